import CoreMetrics
import KindredCore
import KindredSupport
import Metrics
import Prometheus

extension KindredMetrics {
    /// Metrics into a Prometheus registry, every family with its help text
    /// (``families``), with buckets that suit job latencies (1 ms ... 30 s),
    /// and `kindred_build_info`.
    package static func prometheus(registry: PrometheusCollectorRegistry, program: MetricsProgram) -> KindredMetrics {
        var factory = HelpfulPrometheusFactory(registry: registry)
        factory.durationBuckets = [
            .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(20), .milliseconds(50),
            .milliseconds(100), .milliseconds(200), .milliseconds(500), .seconds(1), .seconds(2), .seconds(5), .seconds(10),
            .seconds(30),
        ]
        factory.valueBuckets = [100, 1_000, 10_000, 50_000, 100_000, 200_000, 500_000]
        if program != .other {
            registry.makeGauge(
                descriptor: MetricNameDescriptor(metricName: "kindred_build_info", unitName: "", helpText: help("kindred_build_info")),
                labels: [("version", KindredVersion.current), ("swift", swiftVersion), ("program", program.rawValue)]
            ).set(to: 1.0)
        }
        return KindredMetrics(factory: factory, program: program)
    }
}

/// A swift-metrics factory over a `PrometheusCollectorRegistry` that gives
/// every family its help text from ``KindredMetrics/families``
/// (swift-prometheus' own factory creates families without one).
///
/// A family's help is fixed at its first registration and the registry
/// refuses a different one later, so every metric of a registry must come
/// through this factory or carry the same help.
package struct HelpfulPrometheusFactory: MetricsFactory {
    package let registry: PrometheusCollectorRegistry
    /// The buckets of every timer's histogram.
    package var durationBuckets: [Duration] = [.milliseconds(5), .milliseconds(50), .milliseconds(500), .seconds(5)]
    /// The buckets of every aggregating recorder's histogram.
    package var valueBuckets: [Double] = [10, 100, 1_000, 10_000]

    package init(registry: PrometheusCollectorRegistry) { self.registry = registry }

    private func descriptor(_ label: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: label, unitName: "", helpText: KindredMetrics.help(label))
    }

    package func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    package func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    package func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard aggregate else { return registry.makeGauge(descriptor: descriptor(label), labels: dimensions) }
        return registry.makeValueHistogram(descriptor: descriptor(label), labels: dimensions, buckets: valueBuckets)
    }

    package func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        registry.makeGauge(descriptor: descriptor(label), labels: dimensions)
    }

    package func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        registry.makeDurationHistogram(descriptor: descriptor(label), labels: dimensions, buckets: durationBuckets)
    }

    package func destroyCounter(_ handler: any CounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    package func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    package func destroyRecorder(_ handler: any RecorderHandler) {
        switch handler {
        case let gauge as Prometheus.Gauge: registry.unregisterGauge(gauge)
        case let histogram as ValueHistogram: registry.unregisterValueHistogram(histogram)
        default: break
        }
    }

    package func destroyMeter(_ handler: any MeterHandler) {
        if let gauge = handler as? Prometheus.Gauge { registry.unregisterGauge(gauge) }
    }

    package func destroyTimer(_ handler: any TimerHandler) {
        if let histogram = handler as? DurationHistogram { registry.unregisterDurationHistogram(histogram) }
    }
}
