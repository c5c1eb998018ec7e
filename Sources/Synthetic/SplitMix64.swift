/// SplitMix64 (Steele, Lea, Flood 2014): a small, fast, statistically sound
/// generator whose output depends only on its seed, on every platform. The
/// generator derives one stream per member from `(seed, index)`, so members
/// can be generated in parallel and still come out identical for a seed.
package struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    package init(seed: UInt64) { state = seed }

    /// A stream for item `index` of a run seeded with `seed`.
    package init(seed: UInt64, stream index: UInt64) {
        var mixer = SplitMix64(seed: seed ^ 0x5851_F42D_4C95_7F2D)
        state = mixer.next() &+ index &* 0x9E37_79B9_7F4A_7C15
        _ = next()
    }

    package mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    package mutating func unit() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// Uniform in `range` (unbiased enough for synthetic data: 64-bit multiply-shift).
    package mutating func int(in range: ClosedRange<Int>) -> Int {
        let span = UInt64(range.upperBound - range.lowerBound + 1)
        return range.lowerBound + Int(next().multipliedFullWidth(by: span).high)
    }

    /// An approximately standard normal deviate: the Irwin-Hall sum of four
    /// uniforms, centred and scaled to unit variance (tails end at +-3.46).
    /// Close enough for synthetic stances, and far cheaper than log and cos.
    package mutating func normal() -> Double {
        let sum = unit() + unit() + unit() + unit()
        return (sum - 2) * 1.7320508075688772
    }

    /// An index 0 ..< 4 drawn with the given (unnormalised) weights, without allocating.
    package mutating func pick4(_ w: (Double, Double, Double, Double)) -> Int {
        var x = unit() * (w.0 + w.1 + w.2 + w.3)
        x -= w.0
        if x < 0 { return 0 }
        x -= w.1
        if x < 0 { return 1 }
        x -= w.2
        return x < 0 ? 2 : 3
    }

    /// An index drawn with the given (unnormalised) weights.
    package mutating func pick(_ weights: [Double]) -> Int {
        let total = weights.reduce(0, +)
        var x = unit() * total
        for (index, weight) in weights.enumerated() {
            x -= weight
            if x < 0 { return index }
        }
        return weights.count - 1
    }
}
