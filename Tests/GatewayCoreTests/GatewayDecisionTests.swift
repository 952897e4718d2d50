import TestSupport
import Testing
@testable import GatewayCore

@Suite("Gateway breakers, retry budget, choice", .defaultPass)
struct GatewayDecisionTests {
    static var settings: GatewayConfiguration.BreakerSettings {
        var settings = GatewayConfiguration.BreakerSettings()
        settings.consecutiveFailures = 3
        settings.minimumCalls = 10
        settings.errorRate = 0.5
        settings.cooldown = .seconds(2)
        return settings
    }

    @Test("closed → open after consecutive failures → half-open after the cooldown, one trial → closed on success")
    func breakerCycle() {
        var breaker = CircuitBreaker(settings: Self.settings)
        let start = ContinuousClock.now
        for _ in 0..<2 {
            let r1 = breaker.admit(now: start)
            #expect(r1)
            breaker.record(success: false, now: start)
        }
        #expect(breaker.state == .closed)
        let r2 = breaker.admit(now: start)
        #expect(r2)
        breaker.record(success: false, now: start)
        #expect(breaker.state == .open(until: start + .seconds(2)) && breaker.openings == 1)
        let r3 = breaker.admit(now: start + .seconds(1))
        #expect(!r3 && !breaker.isAvailable(now: start + .seconds(1)))
        // Past the cooldown: one trial at a time.
        #expect(breaker.isAvailable(now: start + .seconds(2)))
        let r4 = breaker.admit(now: start + .seconds(2))
        #expect(r4)
        let r5 = breaker.admit(now: start + .seconds(2))
        #expect(!r5)
        breaker.record(success: false, now: start + .seconds(2))
        #expect(breaker.state == .open(until: start + .seconds(4)) && breaker.openings == 2)
        let r6 = breaker.admit(now: start + .seconds(4))
        #expect(r6)
        breaker.record(success: true, now: start + .seconds(4))
        #expect(breaker.state == .closed)
    }

    @Test("A success resets the count in a row; an error rate over the window opens it too")
    func breakerRate() {
        var breaker = CircuitBreaker(settings: Self.settings)
        let start = ContinuousClock.now
        // Fail, fail, succeed, repeated: never 3 in a row, but 2/3 of calls fail.
        for index in 0..<9 {
            _ = breaker.admit(now: start)
            breaker.record(success: index % 3 == 2, now: start)
        }
        #expect(breaker.state == .closed)
        _ = breaker.admit(now: start)
        breaker.record(success: false, now: start)
        #expect(breaker.openings == 1)
        // Old failures leave the window.
        var fresh = CircuitBreaker(settings: Self.settings)
        for _ in 0..<8 { fresh.record(success: true, now: start); fresh.record(success: false, now: start) }
        fresh.record(success: true, now: start + .seconds(40))
        fresh.record(success: false, now: start + .seconds(40))
        #expect(fresh.state == .closed)
    }

    @Test("Probes: a good one closes a breaker past its cooldown; bad ones open a closed one only by the same count")
    func breakerProbes() {
        var breaker = CircuitBreaker(settings: Self.settings)
        let start = ContinuousClock.now
        for _ in 0..<3 { breaker.record(success: false, now: start) }
        breaker.probe(success: true, now: start + .seconds(1))
        #expect(breaker.state == .open(until: start + .seconds(2)))
        breaker.probe(success: true, now: start + .seconds(2))
        #expect(breaker.state == .closed)
        breaker.probe(success: false, now: start + .seconds(3))
        breaker.probe(success: false, now: start + .seconds(3))
        #expect(breaker.state == .closed)
        breaker.probe(success: false, now: start + .seconds(3))
        #expect(breaker.openings == 2)
    }

    @Test("The retry budget allows the reserve, then about the ratio of first calls, refilled slowly over time")
    func budget() {
        var budget = RetryBudget(ratio: 0.2, reserve: 2, perSecond: 1)
        let start = ContinuousClock.now
        let r7 = budget.withdraw(now: start)
        let r8 = budget.withdraw(now: start)
        #expect(r7 && r8)
        let r9 = budget.withdraw(now: start)
        #expect(!r9)
        for _ in 0..<10 { budget.deposit() }
        let r10 = budget.withdraw(now: start)
        let r11 = budget.withdraw(now: start)
        #expect(r10 && r11)
        let r12 = budget.withdraw(now: start)
        #expect(!r12)
        let r13 = budget.withdraw(now: start + .milliseconds(1100))
        #expect(r13)
    }

    @Test("Choice: least work per weight of two drawn, never an unavailable or full one, cold only when nothing warm is left")
    func choice() {
        let picker = UpstreamPicker()
        var draws: [Double] = []
        func next() -> Double { draws.isEmpty ? 0 : draws.removeFirst() }
        let busy = UpstreamPicker.Candidate(index: 0, weight: 1, queued: 10, workers: 1)
        let idle = UpstreamPicker.Candidate(index: 1, weight: 1, queued: 0, workers: 1)
        draws = [0.1, 0.9]
        #expect(picker.pick([busy, idle], random: next) == 1)
        draws = [0.9, 0.1]
        #expect(picker.pick([busy, idle], random: next) == 1)
        var open = idle
        open.available = false
        #expect(picker.pick([busy, open]) == 0)
        var full = idle
        full.inFlight = 4
        full.maxInFlight = 4
        #expect(picker.pick([busy, full]) == 0)
        #expect(picker.pick([open, full]) == nil)
        let cold = UpstreamPicker.Candidate(index: 2, weight: 1, workers: 0)
        for _ in 0..<20 { #expect(picker.pick([cold, busy]) == 0) }
        #expect(picker.pick([cold]) == 2)
        // Weights: the heavier upstream is drawn in proportion, and its work counts less.
        let heavy = UpstreamPicker.Candidate(index: 3, weight: 3, queued: 6, workers: 1)
        let light = UpstreamPicker.Candidate(index: 4, weight: 1, queued: 2, workers: 1)
        #expect(heavy.load == 1 && light.load == 1)
        var counts = [3: 0, 4: 0]
        for _ in 0..<2000 { counts[picker.pick([heavy, UpstreamPicker.Candidate(index: 4, weight: 1, queued: 3, workers: 1)])!, default: 0] += 1 }
        #expect(counts[3]! > 1800)
    }
}

@Suite("Gateway choice with lying counts", .defaultPass)
struct GatewayHostileCountsTests {
    @Test("Huge queue and worker counts (a lying /health) do not overflow the choice")
    func hugeCounts() {
        let picker = UpstreamPicker()
        let liar = UpstreamPicker.Candidate(index: 0, weight: 1, queued: .max, inFlight: 5, workers: .max)
        let honest = UpstreamPicker.Candidate(index: 1, weight: 1, queued: 1, workers: 1)
        #expect(liar.load.isFinite)
        #expect(picker.pick([liar, honest]) != nil)
    }
}
