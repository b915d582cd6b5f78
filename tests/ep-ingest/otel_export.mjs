// Exports one collection of metrics with the official OpenTelemetry JS SDK exporter to an
// OTLP/HTTP endpoint, and prints the exporter's result as one JSON line
// {"code":0|1,"error":…,"status":HTTP status of a failure}; exit status 0 on success.
//   EP_NODE_MODULES=tests/node/node_modules node otel_export.mjs URL KEY proto|json DEVICE
// Records: counter pumped.litres (unit L) 5+7 for line=a and 2 for line=b; gauge
// tank.level 0.75 for tank=t1 and 0.5 for tank=t2; up-down counter queue.depth 3-1.
import { createRequire } from 'node:module';

const require = createRequire(process.env.EP_NODE_MODULES.replace(/\/?$/, '/'));
const { MeterProvider, MetricReader } = require('@opentelemetry/sdk-metrics');
const { resourceFromAttributes } = require('@opentelemetry/resources');

const [url, key, encoding, device] = process.argv.slice(2);
const { OTLPMetricExporter } = require(encoding === 'json' ? '@opentelemetry/exporter-metrics-otlp-http'
                                                          : '@opentelemetry/exporter-metrics-otlp-proto');

// Collects on demand only, so exactly one export happens.
class OnDemandReader extends MetricReader {
  async onForceFlush() {}
  async onShutdown() {}
}

const reader = new OnDemandReader();
const provider = new MeterProvider({
  resource: resourceFromAttributes({ 'service.name': 'pump', 'service.instance.id': device }),
  readers: [reader],
});
const meter = provider.getMeter('ep-test');
const litres = meter.createCounter('pumped.litres', { unit: 'L' });
litres.add(5, { line: 'a' });
litres.add(7, { line: 'a' });
litres.add(2, { line: 'b' });
const level = meter.createGauge('tank.level');
level.record(0.75, { tank: 't1' });
level.record(0.5, { tank: 't2' });
const depth = meter.createUpDownCounter('queue.depth');
depth.add(3);
depth.add(-1);

const exporter = new OTLPMetricExporter({ url, headers: { Authorization: `Bearer ${key}` } });
const { resourceMetrics } = await reader.collect();
const result = await new Promise((resolve) => exporter.export(resourceMetrics, resolve));
console.log(JSON.stringify({
  code: result.code,
  error: result.error ? String(result.error.message) : null,
  status: result.error?.code ?? null,
}));
process.exit(result.code === 0 ? 0 : 1);
