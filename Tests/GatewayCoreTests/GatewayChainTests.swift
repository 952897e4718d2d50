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
        let loop = GatewayChain("a,me,b").refusal(at: "me")
        #expect(loop?.status == 508 && loop?.message.contains("came back") == true && loop?.message.contains("a → me → b") == true)
        #expect(GatewayChain("me2").refusal(at: "me") == nil, "an id is matched whole")
        let seven = GatewayChain((1...7).map { "g\($0)" }.joined(separator: ","))
        #expect(seven.refusal(at: "me") == nil)
        let eight = GatewayChain(seven.forwarded(by: "g8").value).refusal(at: "me")
        #expect(eight?.status == 508 && eight?.message.contains("at most 8") == true)
        // Ids no gateway wrote: too long, or not letters, digits, '-' and '_'; refused as such,
        // and never echoed whole.
        let long = GatewayChain(String(repeating: "x", count: 9_000)).refusal(at: "me")
        #expect(long?.status == 400 && long?.message.contains("9000 bytes") == true && (long?.message.utf8.count ?? .max) < 300)
        #expect(GatewayChain("a;b").refusal(at: "me")?.status == 400)
        #expect(GatewayChain("ä").refusal(at: "me")?.status == 400)
        #expect(GatewayChain(String(repeating: "f", count: 64)).refusal(at: "me") == nil)
    }
}
