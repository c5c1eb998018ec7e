import KindredCore
import KindredSupport
import Logging
import ServiceLifecycle

/// The worker daemon: its services over the shared parts ``Bootstrap`` loaded.
package enum WorkerDaemon {
    /// A worker process's services, in start order; the `ServiceGroup`
    /// stops them in reverse, so the generation workers stop first (finishing
    /// or handing back their jobs) while heartbeats continue.
    package static func services(
        _ runtime: WorkerRuntime, metricsServer: (any Service)?
    ) -> [any Service] {
        let core = runtime.core
        var services: [any Service] = []
        if let metricsServer { services.append(metricsServer) }
        services += [
            Maintenance.metricsCollector(core, queue: runtime.queue),
            Maintenance.throughputPublisher(runtime),
            Maintenance.heartbeat(runtime),
            Maintenance.reaper(runtime),
            Maintenance.refresher(core),
            Maintenance.shardWatcher(runtime),
            Maintenance.setAudit(runtime),
            Maintenance.repairSweep(runtime),
            ThreadsService(
                name: "generation", count: runtime.settings.workers, shutdownTimeout: runtime.settings.shutdownTimeout,
                logger: core.logger
            ) { index, stop in
                WorkerLoop(runtime: runtime, index: index).run(stop: stop)
            },
        ]
        return services
    }
}
