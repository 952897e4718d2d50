#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing

/// A tmpfs of a few hundred kilobytes, mounted for one test: a volume that really fills up, so a
/// full disk is met by the real system calls (short writes, ENOSPC) rather than a fake.
package final class SmallVolume: Sendable {
    package let path: String

    /// Whether this process may mount one (root with CAP_SYS_ADMIN; containers often refuse).
    package static let mountable: Bool = {
        guard let volume = try? SmallVolume(bytes: 64 * 1024) else { return false }
        volume.unmount()
        return true
    }()

    package static let refusedMessage =
        "needs to mount a small tmpfs (root with CAP_SYS_ADMIN); this machine refuses mounting, so the full-disk case is not run"

    package init(bytes: Int) throws {
        path = NSTemporaryDirectory() + "small-volume-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        guard mount("tmpfs", path, "tmpfs", 0, "size=\(bytes),mode=0755") == 0 else {
            let reason = String(cString: strerror(errno))
            rmdir(path)
            throw SmallVolumeError(description: "mount tmpfs at \(path): \(reason)")
        }
    }

    /// Fills the volume with a file, leaving about `leave` bytes free; deleting it frees the space.
    package func fill(leaving leave: Int, name: String = "filler") -> String {
        let filler = path + "/" + name
        let fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        defer { close(fd) }
        var info = statvfs()
        statvfs(path, &info)
        let free = Int(info.f_bavail) * Int(info.f_frsize)
        let chunk = [UInt8](repeating: 7, count: 4096)
        var written = 0
        while written + chunk.count <= free - leave, write(fd, chunk, chunk.count) == chunk.count { written += chunk.count }
        return filler
    }

    package func unmount() {
        umount2(path, Int32(MNT_DETACH))
        rmdir(path)
    }
}

package struct SmallVolumeError: Error, CustomStringConvertible {
    package let description: String
}
