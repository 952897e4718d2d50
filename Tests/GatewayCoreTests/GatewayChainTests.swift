import GatewayCore
import Testing
import TestSupport

@Suite("The chain of gateways a request passed", .defaultPass)
struct GatewayChainTests {
    @Test("Read from the header (spaces and empty entries ignored), refused when it holds this gateway or is too long, extended on the way out")
    func chain() {
        #expect(GatewayChain(nil).instances.isEmpty)
        #expect(GatewayChain(" a , ,b,").instances == ["a", "b"])
        #expect(GatewayChain(nil).refusal(at: "me") == nil)
        #expect(GatewayChain(nil).forwarded(by: "me") == ("X-Gateway-Chain", "me"))
        #expect(GatewayChain("a,b").forwarded(by: "me").value == "a,b,me")
        let loop = GatewayChain("a,me,b").refusal(at: "me") ?? ""
        #expect(loop.contains("came back") && loop.contains("a → me → b"))
        #expect(GatewayChain("me2").refusal(at: "me") == nil, "an id is matched whole")
        let seven = GatewayChain((1...7).map { "g\($0)" }.joined(separator: ","))
        #expect(seven.refusal(at: "me") == nil)
        #expect(GatewayChain(seven.forwarded(by: "g8").value).refusal(at: "me")?.contains("at most 8") == true)
    }
}
