import Foundation
import Hummingbird
import KindredSupport
import Prometheus

#if canImport(Glibc)
import Glibc
#endif

/// The standard `process_*` families (the names and meanings every
/// Prometheus client library uses), read from `/proc/self` when scraped:
/// CPU time, resident and virtual memory, open and maximum file
/// descriptors, start time. Empty where there is no `/proc` (not Linux).
///
/// Cost: a few small reads of `/proc` and a listing of `/proc/self/fd`,
/// a blocking but memory-only kernel path: ``MetricsExposition`` runs it off
/// the cooperative pool all the same.
package enum ProcessMetrics {
    /// The families in the Prometheus text format.
    package static func text() -> String {
        #if os(Linux)
        guard let sample = sample() else { return "" }
        var out = ""
        func family(_ name: String, _ type: String, _ help: String, _ value: Double) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name) \(format(value))\n"
        }
        family("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", sample.cpuSeconds)
        family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", sample.residentBytes)
        family("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", sample.virtualBytes)
        family("process_open_fds", "gauge", "Number of open file descriptors.", sample.openFDs)
        family("process_max_fds", "gauge", "Maximum number of open file descriptors.", sample.maxFDs)
        family(
            "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.", sample.startTime)
        return out
        #else
        return ""
        #endif
    }

    /// What `/proc` says of this process now.
    package struct Sample: Sendable {
        package var cpuSeconds: Double
        package var residentBytes: Double
        package var virtualBytes: Double
        package var openFDs: Double
        package var maxFDs: Double
        package var startTime: Double
    }

    /// Reads `/proc/self/stat`, `/proc/stat` (boot time), `/proc/self/fd`
    /// and the descriptor limit; nil when `/proc` cannot be read.
    package static func sample() -> Sample? {
        #if os(Linux)
        guard let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        // The fields after "(comm)", which may itself hold spaces and parentheses:
        // field 3 (state) is index 0 here, so field N is index N - 3.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        func field(_ number: Int) -> Double { fields.count > number - 3 ? Double(fields[number - 3]) ?? 0 : 0 }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let pageSize = Double(sysconf(Int32(_SC_PAGESIZE)))
        var bootTime = 0.0
        if let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("btime ") })
        {
            bootTime = Double(line.dropFirst(6).trimmingCharacters(in: .whitespaces)) ?? 0
        }
        let openFDs = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0
        var limit = rlimit()
        let maxFDs = getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 ? Double(limit.rlim_cur) : 0
        return Sample(
            cpuSeconds: ticks > 0 ? (field(14) + field(15)) / ticks : 0,
            residentBytes: field(24) * pageSize,
            virtualBytes: field(23),
            openFDs: Double(openFDs),
            maxFDs: maxFDs,
            startTime: ticks > 0 ? bootTime + field(22) / ticks : 0)
        #else
        return nil
        #endif
    }

    /// A sample value as Prometheus reads it (integers without a fraction).
    static func format(_ value: Double) -> String {
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(value)
    }
}

/// A program's `/metrics` answer: its registry's families (each with HELP
/// and TYPE, ``HelpfulPrometheusFactory``) followed by the `process_*`
/// families read at scrape time.
package struct MetricsExposition: Sendable {
    package let registry: PrometheusCollectorRegistry

    package init(registry: PrometheusCollectorRegistry) { self.registry = registry }

    /// The whole text. Blocking (reads `/proc`): call it off the cooperative pool.
    package func text() -> [UInt8] {
        var bytes: [UInt8] = []
        registry.emit(into: &bytes)
        bytes.append(contentsOf: ProcessMetrics.text().utf8)
        return bytes
    }

    /// The `GET /metrics` response, made on a thread of its own.
    package func response() async throws -> Response {
        let bytes = try await runOnThread(name: "kindred-metrics") { [self] in text() }
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}
