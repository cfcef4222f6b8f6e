import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter as OtlpJsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OtlpProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler, AlwaysOnSampler, BatchSpanProcessor, NodeTracerProvider, ParentBasedSampler, TraceIdRatioBasedSampler, type Sampler,
} from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';

// Tracing is off unless an OTLP endpoint is configured. Off, nothing here runs:
// @opentelemetry/api hands out its no-op tracer, whose spans are one shared
// non-recording object, so the spans in the code cost a function call each.
//
// The standard OTEL_* variables, read by main.ts (the only reader of
// process.env) and handed over here. Only OTLP over HTTP is offered
// (http/protobuf, the default, and http/json); grpc is refused at start-up
// rather than silently exporting nothing.

export type TelemetryEnv = {
  OTEL_EXPORTER_OTLP_ENDPOINT?: string;
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?: string;
  OTEL_EXPORTER_OTLP_PROTOCOL?: string;
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL?: string;
  OTEL_SERVICE_NAME?: string;
  OTEL_TRACES_SAMPLER?: string;
  OTEL_TRACES_SAMPLER_ARG?: string | number;
};

export const OTEL_ENV_KEYS = [
  'OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'OTEL_EXPORTER_OTLP_PROTOCOL', 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL',
  'OTEL_SERVICE_NAME', 'OTEL_TRACES_SAMPLER', 'OTEL_TRACES_SAMPLER_ARG',
] as const satisfies readonly (keyof TelemetryEnv)[];

/** The OTEL_* variables of an environment (the bench hands them to the processes it starts). */
export function telemetryEnvOf(env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of OTEL_ENV_KEYS) {
    const value = env[key];
    if (value) out[key] = value;
  }
  return out;
}

export type Tracing = {
  enabled: boolean;
  /** Where spans go, for the start-up log line (null when off). */
  url: string | null;
  protocol: string | null;
  serviceName: string | null;
  /** Exports what is buffered and stops; call on shutdown. */
  shutdown(): Promise<void>;
};

const OFF: Tracing = { enabled: false, url: null, protocol: null, serviceName: null, shutdown: async () => undefined };

export class TelemetryConfigError extends Error {}

/** The traces URL: the signal-specific endpoint as given, or the base endpoint plus /v1/traces (the OTLP spec's rule). */
export function tracesUrl(env: TelemetryEnv): string | null {
  if (env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  if (!env.OTEL_EXPORTER_OTLP_ENDPOINT) return null;
  return `${env.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, '')}/v1/traces`;
}

/** OTEL_TRACES_SAMPLER / _ARG, as the SDK spec names them; default parentbased_always_on. */
export function samplerOf(env: TelemetryEnv): Sampler {
  const name = (env.OTEL_TRACES_SAMPLER ?? 'parentbased_always_on').trim().toLowerCase();
  const arg = env.OTEL_TRACES_SAMPLER_ARG === undefined ? 1 : Number(env.OTEL_TRACES_SAMPLER_ARG);
  if (name.endsWith('traceidratio') && (!Number.isFinite(arg) || arg < 0 || arg > 1)) {
    throw new TelemetryConfigError(`OTEL_TRACES_SAMPLER_ARG must be a ratio between 0 and 1 (got "${env.OTEL_TRACES_SAMPLER_ARG}")`);
  }
  switch (name) {
    case 'always_on': return new AlwaysOnSampler();
    case 'always_off': return new AlwaysOffSampler();
    case 'traceidratio': return new TraceIdRatioBasedSampler(arg);
    case 'parentbased_always_on': return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case 'parentbased_always_off': return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio': return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(arg) });
    default:
      throw new TelemetryConfigError(
        `OTEL_TRACES_SAMPLER "${env.OTEL_TRACES_SAMPLER}" is not supported (always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio)`,
      );
  }
}

/**
 * Starts tracing when an OTLP endpoint is configured; otherwise does nothing.
 * Throws TelemetryConfigError for a configuration it cannot honour (main.ts
 * turns that into one line and exit 1).
 */
export function startTracing(env: TelemetryEnv, defaults: { serviceName: string }): Tracing {
  const url = tracesUrl(env);
  if (!url) return OFF;
  const protocol = (env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf').trim();
  if (protocol !== 'http/protobuf' && protocol !== 'http/json') {
    throw new TelemetryConfigError(`OTEL_EXPORTER_OTLP_PROTOCOL "${protocol}" is not supported: use http/protobuf (the default) or http/json`);
  }
  const sampler = samplerOf(env);
  const serviceName = env.OTEL_SERVICE_NAME || defaults.serviceName;
  const exporter = protocol === 'http/json' ? new OtlpJsonExporter({ url }) : new OtlpProtoExporter({ url });
  const provider = new NodeTracerProvider({
    resource: defaultResource().merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: serviceName })),
    sampler,
    spanProcessors: [new BatchSpanProcessor(exporter)],
  });
  // AsyncLocalStorage context (so a span started in an awaited call is the child of
  // the active one) and the W3C traceparent propagator, as the globals @opentelemetry/api uses.
  provider.register({ propagator: new W3CTraceContextPropagator() });
  return {
    enabled: true,
    url,
    protocol,
    serviceName,
    shutdown: () => provider.shutdown(),
  };
}
