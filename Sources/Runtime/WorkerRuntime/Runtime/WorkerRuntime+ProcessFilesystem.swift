#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension WorkerRuntime {
    /// Throws unless `/proc` is there. On Linux the Swift runtime cannot do without it: the
    /// concurrency pool's libdispatch counts its runnable threads from /proc/<thread>/stat and
    /// stops the process with SIGILL when that cannot be opened (at a random moment, whenever work
    /// is waiting), and the statically linked runtime reads the command line from
    /// /proc/self/cmdline. Refusing to start says what is wrong; going on would crash later.
    static func checkProcessFilesystem(probe path: String = "/proc/self/stat") throws(WorkerRuntimeError) {
        #if os(Linux)
        guard access(path, R_OK) == 0 else {
            throw .processFilesystemMissing(path, reason: String(cString: strerror(errno)))
        }
        #endif
    }
}
