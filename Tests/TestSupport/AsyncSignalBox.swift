import Synchronization

/// A gate tests open once; everything waiting on it proceeds.
package final class AsyncSignalBox: Sendable {
    package init() {}
    private let opened = Atomic<Bool>(false)
    package func open() { opened.store(true, ordering: .relaxed) }
    package func wait() async {
        while !opened.load(ordering: .relaxed) { try? await Task.sleep(for: .milliseconds(2)) }
    }
}
