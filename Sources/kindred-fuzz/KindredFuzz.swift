import FuzzTargets

#if canImport(Glibc)
import Glibc
#endif

/// The libFuzzer driver for one of ``FuzzTarget``'s targets, chosen by
/// `KINDRED_FUZZ_TARGET`. Built only by `scripts/fuzz` (the manifest
/// declares this target when `KINDRED_FUZZ` is set), with
/// `-sanitize=fuzzer,address`; usage and results in docs/testing.md's "Fuzzing".
///
/// Why a `main` of our own: SwiftPM links an executable with `main` aliased
/// to the module's entry point, so libFuzzer's `main` is not the one that
/// runs; this one starts libFuzzer's driver itself. `LLVMFuzzerTestOneInput`
/// is still defined, because libFuzzer's `main` (linked in, unused) names it.
@main
enum KindredFuzz {
    static func main() {
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        _ = selected  // fail before fuzzing when the target is unknown
        _ = LLVMFuzzerRunDriver(&argc, &argv) { data, size in
            selected.run(UnsafeRawBufferPointer(start: data, count: size))
            return 0
        }
    }
}

/// The target named by `KINDRED_FUZZ_TARGET` (initialized once, on first use).
let selected: FuzzTarget = {
    let name = getenv("KINDRED_FUZZ_TARGET").map { String(cString: $0) } ?? ""
    guard let target = FuzzTarget(rawValue: name) else {
        let known = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
        let message = "kindred-fuzz: set KINDRED_FUZZ_TARGET to one of: \(known)\n"
        _ = message.withCString { write(2, $0, strlen($0)) }
        exit(2)
    }
    return target
}()

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

@_cdecl("LLVMFuzzerTestOneInput")
package func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    selected.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
