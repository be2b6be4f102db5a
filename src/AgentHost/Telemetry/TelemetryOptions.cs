using AgentHost.Extensions.AI;
using AgentHost.Llama;
using AgentHost.Server;
using Microsoft.Extensions.Diagnostics.Metrics;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace AgentHost.Telemetry;

/// <summary>The <c>Telemetry</c> configuration section: OTLP export of AgentHost's spans and metrics (off by default).</summary>
internal sealed class TelemetryOptions
{
    /// <summary>The configuration section name.</summary>
    public const string SectionName = "Telemetry";

    /// <summary>OTLP export; nothing is exported while its endpoint is empty.</summary>
    public OtlpSettings Otlp { get; set; } = new();

    /// <summary>Where and how spans and metrics go over OTLP.</summary>
    internal sealed class OtlpSettings
    {
        /// <summary>The collector's URL, e.g. <c>http://localhost:4317</c> (gRPC) or <c>http://localhost:4318</c> (HTTP); empty: no export.</summary>
        public string? Endpoint { get; set; }

        /// <summary><c>grpc</c> (default) or <c>http/protobuf</c>.</summary>
        public string Protocol { get; set; } = "grpc";

        /// <summary>Headers sent with every export, e.g. <c>Authorization=Bearer KEY</c> (comma-separated <c>key=value</c> pairs).</summary>
        public string? Headers { get; set; }
    }

    /// <summary>Whether OTLP export is on.</summary>
    public bool ExportsOtlp => !string.IsNullOrWhiteSpace(Otlp.Endpoint);

    /// <summary>Checks the section; a bad value is one error naming its key.</summary>
    public void Validate()
    {
        if (!ExportsOtlp)
            return;
        Guard(Uri.TryCreate(Otlp.Endpoint!.Trim(), UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https",
            $"{SectionName}:Otlp:Endpoint must be an absolute http(s) URL (e.g. http://localhost:4317), not '{Otlp.Endpoint}'.");
        Guard(Otlp.Protocol is "grpc" or "http/protobuf", $"{SectionName}:Otlp:Protocol must be grpc or http/protobuf, not '{Otlp.Protocol}'.");
    }

    private static void Guard(bool ok, string message)
    {
        if (!ok)
            throw new AgentHostException(ErrorKind.InvalidArgument, message);
    }
}

/// <summary>OpenTelemetry for the app's containers: AgentHost's sources and meters, OTLP when configured, Prometheus for <c>serve</c>.</summary>
internal static class AppTelemetry
{
    /// <summary>
    /// Adds OpenTelemetry on <paramref name="services"/> when it has somewhere to send data: OTLP (when configured) for
    /// AgentHost's spans and both meters, and the Prometheus exporter behind <c>/metrics</c> when <paramref name="prometheus"/>.
    /// </summary>
    public static void AddAgentHostTelemetry(this IServiceCollection services, TelemetryOptions options, bool prometheus)
    {
        options.Validate();
        if (!options.ExportsOtlp && !prometheus)
            return;
        var telemetry = services.AddOpenTelemetry().ConfigureResource(r => r.AddService("agenthost"));
        if (prometheus)
        {
            // A server reads only the meters of its own container (its IMeterFactory's): another server or client in the
            // same process keeps its own numbers.
            services.AddMetrics(rules => rules
                .EnableMetrics(AgentHostTelemetry.MeterName, null, null, MeterScope.Local)
                .EnableMetrics(ServerMetrics.MeterName, null, null, MeterScope.Local));
        }
        telemetry.WithMetrics(metrics =>
        {
            if (prometheus)
                metrics.AddPrometheusExporter(o => o.ScrapeResponseCacheDurationMilliseconds = 0);   // every scrape fresh (tests poll it)
            else
                metrics.AddMeter(AgentHostTelemetry.MeterName);   // the CLI's clients use the process-wide meter
            if (options.ExportsOtlp)
                metrics.AddOtlpExporter(o => Configure(o, options.Otlp, "v1/metrics"));
        });
        if (options.ExportsOtlp)
            telemetry.WithTracing(tracing => tracing.AddSource(AgentHostTelemetry.ActivitySourceName).AddOtlpExporter(o => Configure(o, options.Otlp, "v1/traces")));
    }

    /// <summary>
    /// Starts <paramref name="host"/> when <see cref="AddAgentHostTelemetry"/> added exporters (the CLI's host is otherwise
    /// never started): starting builds the providers and subscribes the metrics listeners. Disposing the host flushes them.
    /// </summary>
    public static async Task StartTelemetryAsync(this IHost host, CancellationToken cancellationToken)
    {
        if (host.Services.GetService<MeterProvider>() is not null)
            await host.StartAsync(cancellationToken);
    }

    // Over HTTP each signal has its own path under the collector's base URL (as OTEL_EXPORTER_OTLP_ENDPOINT is read).
    private static void Configure(OtlpExporterOptions exporter, TelemetryOptions.OtlpSettings settings, string signalPath)
    {
        var endpoint = settings.Endpoint!.Trim();
        var http = settings.Protocol == "http/protobuf";
        exporter.Endpoint = new Uri(http ? $"{endpoint.TrimEnd('/')}/{signalPath}" : endpoint);
        exporter.Protocol = http ? OtlpExportProtocol.HttpProtobuf : OtlpExportProtocol.Grpc;
        if (!string.IsNullOrWhiteSpace(settings.Headers))
            exporter.Headers = settings.Headers;
    }
}
