using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;
using AgentHost.Extensions.AI;

namespace AgentHost.Server;

/// <summary>
/// <c>GET /metrics</c> in Prometheus' text format, read through a <see cref="MeterListener"/> from the meters of this
/// server's container: the libraries' <see cref="AgentHostTelemetry.MeterName"/> (tokens, timings, speculative
/// statistics) and the server's own <see cref="MeterName"/> (requests, errors, queue depth). An app exporting those
/// meters through OpenTelemetry sees the same numbers. Names: dots become underscores and counters end in
/// <c>_total</c>; histograms go to OpenTelemetry only.
/// </summary>
internal sealed class ServerMetrics : IDisposable
{
    /// <summary>Name of the server's meter.</summary>
    public const string MeterName = "AgentHost.Server";

    private readonly MeterListener _listener;
    private readonly Counter<long> _requests;
    private readonly Counter<long> _errors;
    private readonly ConcurrentDictionary<string, Series> _series = new(StringComparer.Ordinal);

    public ServerMetrics(ModelHost models, IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(MeterName);
        _requests = meter.CreateCounter<long>("agenthost.requests", "{request}", "HTTP requests answered, by endpoint and status.");
        _errors = meter.CreateCounter<long>("agenthost.errors", "{request}", "Requests answered with an error, by error type.");
        meter.CreateObservableGauge("agenthost.queue_depth", () => models.Loaded.Select(m => new Measurement<int>(m.Admitted, new KeyValuePair<string, object?>("model", m.Name))),
            "{request}", "Requests admitted for a model (waiting for or holding it; embeddings included).");

        _listener = new MeterListener
        {
            InstrumentPublished = (instrument, listener) =>
            {
                // Only this container's meters: another server in the same process keeps its own numbers.
                if (instrument.Meter.Scope == meterFactory && instrument.Meter.Name is AgentHostTelemetry.MeterName or MeterName && Describe(instrument) is { } series)
                    listener.EnableMeasurementEvents(instrument, _series.GetOrAdd(series.Name, series));
            },
        };
        _listener.SetMeasurementEventCallback<long>((_, value, tags, state) => ((Series)state!).Record(value, tags));
        _listener.SetMeasurementEventCallback<int>((_, value, tags, state) => ((Series)state!).Record(value, tags));
        _listener.SetMeasurementEventCallback<double>((_, value, tags, state) => ((Series)state!).Record(value, tags));
        _listener.Start();
    }

    public void CountRequest(string endpoint, int status) => _requests.Add(1, new("endpoint", endpoint), new("status", status));

    public void CountError(string type) => _errors.Add(1, new KeyValuePair<string, object?>("type", type));

    public string Render()
    {
        _listener.RecordObservableInstruments();
        var text = new StringBuilder();
        foreach (var series in _series.Values.OrderBy(s => s.Name, StringComparer.Ordinal))
            Write(text, series.Name, series.Help, series.Type, series.Values);

        // Ratios of the counters since start, per model.
        var tokens = Values(AgentHostTelemetry.CompletionTokens);
        Write(text, "agenthost_tokens_per_second", "Generated tokens per second of generation time, since start.", "gauge",
            Ratios(tokens, Values(AgentHostTelemetry.GenerationSeconds)));
        Write(text, "agenthost_speculative_mat", "Mean tokens accepted per verification forward (speculative strategies).", "gauge",
            Ratios(Values(AgentHostTelemetry.SpeculativeTokens), Values(AgentHostTelemetry.SpeculativeForwards)));
        return text.ToString();
    }

    public void Dispose() => _listener.Dispose();

    /// <summary>The Prometheus series of an instrument, or null for one /metrics does not serve (histograms).</summary>
    private static Series? Describe(Instrument instrument)
    {
        var name = instrument.Name.Replace('.', '_');
        return instrument switch
        {
            Counter<long> or Counter<double> => new Series(name + "_total", instrument.Description ?? "", "counter", Cumulative: true),
            UpDownCounter<long> or UpDownCounter<int> => new Series(name, instrument.Description ?? "", "gauge", Cumulative: true),
            ObservableGauge<int> or ObservableGauge<long> or ObservableGauge<double> => new Series(name, instrument.Description ?? "", "gauge", Cumulative: false),
            _ => null,
        };
    }

    private IReadOnlyDictionary<string, double> Values(string instrument)
        => _series.TryGetValue(instrument.Replace('.', '_') + "_total", out var series) ? series.Values : new Dictionary<string, double>();

    private static Dictionary<string, double> Ratios(IReadOnlyDictionary<string, double> numerators, IReadOnlyDictionary<string, double> denominators)
        => numerators.Where(n => denominators.GetValueOrDefault(n.Key) > 0).ToDictionary(n => n.Key, n => n.Value / denominators[n.Key]);

    private static void Write(StringBuilder text, string name, string help, string type, IReadOnlyDictionary<string, double> values)
    {
        text.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n');
        text.Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
        foreach (var (labels, value) in values.OrderBy(v => v.Key, StringComparer.Ordinal))
            text.Append(name).Append('{').Append(labels).Append("} ").Append(value.ToString("R", CultureInfo.InvariantCulture)).Append('\n');
    }

    /// <summary>One metric: its value per label set, summed (counters) or last observed (gauges).</summary>
    private sealed record Series(string Name, string Help, string Type, bool Cumulative)
    {
        public ConcurrentDictionary<string, double> Values { get; } = new(StringComparer.Ordinal);

        public void Record(double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var labels = Labels(tags);
            if (Cumulative)
                Values.AddOrUpdate(labels, value, (_, current) => current + value);
            else
                Values[labels] = value;
        }

        private static string Labels(ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var text = new StringBuilder();
            foreach (var (key, value) in tags)
            {
                if (text.Length > 0)
                    text.Append(',');
                var escaped = Convert.ToString(value, CultureInfo.InvariantCulture)?.Replace("\\", "\\\\", StringComparison.Ordinal)
                    .Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);
                text.Append(key).Append("=\"").Append(escaped).Append('"');
            }
            return text.ToString();
        }
    }
}
