// Tests reach `runOnLoopback` through TestSupport, as before it moved to a target the fakes share.
@_exported import LoopbackServer
