import { samplerOf, startTracing, TelemetryConfigError, tracesUrl } from '../src/setup';

// The standard OTEL_* variables, as the SDK specification reads them.

it('the traces URL is the signal endpoint as given, else the base endpoint plus /v1/traces, else none (off)', () => {
  expect(tracesUrl({})).toBeNull();
  expect(tracesUrl({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' })).toBe('http://collector:4318/v1/traces');
  expect(tracesUrl({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://other:9999/traces' })).toBe('http://other:9999/traces');
});

it('OTEL_TRACES_SAMPLER and _ARG pick the sampler; parent-based always-on by default', () => {
  expect(samplerOf({}).toString()).toMatch(/^ParentBased\{root=AlwaysOnSampler/);
  expect(samplerOf({ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.01' }).toString()).toMatch(/^ParentBased\{root=TraceIdRatioBased\{0\.01\}/);
  expect(samplerOf({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: 0.5 }).toString()).toBe('TraceIdRatioBased{0.5}');
  expect(samplerOf({ OTEL_TRACES_SAMPLER: 'always_off' }).toString()).toBe('AlwaysOffSampler');
  expect(() => samplerOf({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '2' })).toThrow(TelemetryConfigError);
  expect(() => samplerOf({ OTEL_TRACES_SAMPLER: 'jaeger_remote' })).toThrow(TelemetryConfigError);
});

it('without an endpoint nothing starts, whatever else is set', async () => {
  const tracing = startTracing({ OTEL_SERVICE_NAME: 'x', OTEL_TRACES_SAMPLER: 'always_on' }, { serviceName: 'hookline-api' });
  expect(tracing).toMatchObject({ enabled: false, url: null });
  await tracing.shutdown();
});

it('refuses grpc rather than exporting nothing', () => {
  expect(() => startTracing({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4317', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }, { serviceName: 'hookline-api' })).toThrow(/http\/protobuf/);
});
