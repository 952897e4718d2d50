/// Tools that change while the worker runs (the gateway's: every MCP upstream's, refreshed), in
/// place of the handler's fixed list. MCP asks for the catalog on every `tools/list` and
/// `tools/call`, so it must be cheap: a snapshot the source rebuilds when it refreshes.
package protocol ToolSource: Sendable {
    var catalog: ToolCatalog { get }
    /// A call named a tool the catalog lacks, or one of its tools failed: look again soon.
    func refreshSoon()
    /// Before a transport that clients list once (stdio) starts answering: fill the catalog,
    /// within a few seconds.
    func prepare() async
}

extension ToolSource {
    package func prepare() async {}
}
