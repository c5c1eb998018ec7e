import Foundation
import KindredCore

/// What only the worker daemon keeps beside the parts every program shares
/// (``KindredCore/PipelineContext``): its process id in the queue, which of
/// its generation workers is on a job, and its per-minute counts until
/// they are published. The web backend and the runs never make one.
public final class WorkerRuntime: Sendable {
    public let context: PipelineContext
    /// `host:pid:random`: this process's prefix for worker ids.
    public let processID: String
    /// Which generation workers are on a job, since when.
    public let activity: WorkerActivity
    /// What this process did per minute, until published (the dashboard's charts).
    public let throughput = ThroughputRecorder()

    public init(_ context: PipelineContext) {
        self.context = context
        activity = WorkerActivity(workers: context.settings.workers)
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "host"
        processID = "\(host):\(getpid()):\(String(UInt32.random(in: 0...UInt32.max), radix: 36))"
    }
}
