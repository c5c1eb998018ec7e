import KindredCore
import KindredSupport
import Logging
import ServiceLifecycle

/// The worker daemon: its services over the shared parts ``Bootstrap`` loaded.
public enum WorkerDaemon {
    /// A worker process's services, in start order; the `ServiceGroup`
    /// stops them in reverse, so the generation workers stop first (finishing
    /// or handing back their jobs) while heartbeats continue.
    public static func services(
        _ runtime: WorkerRuntime, metricsServer: (any Service)?
    ) -> [any Service] {
        let context = runtime.context
        var services: [any Service] = []
        if let metricsServer { services.append(metricsServer) }
        services += [
            Maintenance.metricsCollector(context),
            Maintenance.throughputPublisher(runtime),
            Maintenance.heartbeat(runtime),
            Maintenance.reaper(context),
            Maintenance.refresher(context),
            Maintenance.shardWatcher(context),
            Maintenance.setAudit(context),
            Maintenance.repairSweep(context),
            ThreadsService(
                name: "generation", count: context.settings.workers, shutdownTimeout: context.settings.shutdownTimeout,
                logger: context.logger
            ) { index, stop in
                WorkerLoop(runtime: runtime, index: index).run(stop: stop)
            },
        ]
        return services
    }
}
