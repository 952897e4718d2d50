package enum WorkerRuntimeVersion {
    package static let current = "0.1.0"
    /// Sent as `runpod_version`: the platform keys protocol behaviour on the SDK version it speaks.
    package static let protocolVersion = "1.12.0"
}
