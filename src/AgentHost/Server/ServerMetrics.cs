using System.Diagnostics.Metrics;

namespace AgentHost.Server;

/// <summary>
/// The server's own meter (requests, errors, queue depth), beside the libraries' <see cref="Extensions.AI.AgentHostTelemetry.MeterName"/>
/// (tokens, timings, speculative statistics). OpenTelemetry's Prometheus exporter serves both at <c>GET /metrics</c>;
/// an OTLP exporter, when configured, sends the same instruments (see <see cref="Telemetry.AppTelemetry"/>).
/// </summary>
internal sealed class ServerMetrics
{
    /// <summary>Name of the server's meter.</summary>
    public const string MeterName = "AgentHost.Server";

    private readonly Counter<long> _requests;
    private readonly Counter<long> _errors;

    public ServerMetrics(ModelHost models, IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(MeterName);
        _requests = meter.CreateCounter<long>("agenthost.requests", "{request}", "HTTP requests answered, by endpoint and status.");
        _errors = meter.CreateCounter<long>("agenthost.errors", "{request}", "Requests answered with an error, by error type.");
        meter.CreateObservableGauge("agenthost.queue_depth", () => models.Loaded.Select(m => new Measurement<int>(m.Admitted, new KeyValuePair<string, object?>("model", m.Name))),
            "{request}", "Requests admitted for a model (waiting for or holding it; embeddings and forwarded requests included).");
    }

    public void CountRequest(string endpoint, int status) => _requests.Add(1, new("endpoint", endpoint), new("status", status));

    public void CountError(string type) => _errors.Add(1, new KeyValuePair<string, object?>("type", type));
}
