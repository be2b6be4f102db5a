using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using AgentHost.Extensions.AI;
using Microsoft.Extensions.AI;

namespace AgentHost.Server;

/// <summary>Counters and gauges for <c>GET /metrics</c>, written in Prometheus' text format.</summary>
internal sealed class ServerMetrics(ModelHost models)
{
    private readonly ConcurrentDictionary<(string Name, string Labels), double> _counters = new();

    private static readonly Dictionary<string, string> _help = new()
    {
        ["agenthost_requests_total"] = "HTTP requests answered, by endpoint and status.",
        ["agenthost_errors_total"] = "Requests answered with an error, by error type.",
        ["agenthost_prompt_tokens_total"] = "Prompt tokens of finished generations.",
        ["agenthost_cached_prompt_tokens_total"] = "Prompt tokens taken from the prompt cache instead of being decoded.",
        ["agenthost_completion_tokens_total"] = "Generated tokens.",
        ["agenthost_generation_seconds_total"] = "Wall time spent generating (prefill included).",
        ["agenthost_speculative_forwards_total"] = "Verification forwards of speculative strategies (recycling, lookup).",
        ["agenthost_speculative_tokens_total"] = "Tokens emitted by those forwards.",
    };

    public void CountRequest(string endpoint, int status) => Add("agenthost_requests_total", $"endpoint=\"{endpoint}\",status=\"{status}\"", 1);

    public void CountError(string type) => Add("agenthost_errors_total", $"type=\"{type}\"", 1);

    /// <summary>Records one finished generation from its usage and the strategy's statistics.</summary>
    public void Record(string model, UsageDetails? usage, AdditionalPropertiesDictionary? properties)
    {
        var labels = Labels(model);
        Add("agenthost_prompt_tokens_total", labels, usage?.InputTokenCount ?? 0);
        Add("agenthost_cached_prompt_tokens_total", labels, usage?.CachedInputTokenCount ?? 0);
        Add("agenthost_completion_tokens_total", labels, usage?.OutputTokenCount ?? 0);
        if (properties?.TryGetValue(LlamaChatClient.StatsKey, out var value) == true && value is IReadOnlyDictionary<string, double> stats)
        {
            Add("agenthost_generation_seconds_total", labels, stats.GetValueOrDefault("elapsed_ms") / 1000);
            if (stats.TryGetValue("forwards", out var forwards))
            {
                Add("agenthost_speculative_forwards_total", labels, forwards);
                Add("agenthost_speculative_tokens_total", labels, usage?.OutputTokenCount ?? 0);
            }
        }
    }

    public string Render()
    {
        var text = new StringBuilder();
        foreach (var group in _counters.GroupBy(c => c.Key.Name).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            text.Append("# HELP ").Append(group.Key).Append(' ').Append(_help[group.Key]).Append('\n');
            text.Append("# TYPE ").Append(group.Key).Append(" counter\n");
            foreach (var entry in group.OrderBy(e => e.Key.Labels, StringComparer.Ordinal))
                Line(text, group.Key, entry.Key.Labels, entry.Value);
        }

        Gauge(text, "agenthost_queue_depth", "Requests admitted for a model (waiting for or holding it; embeddings included).",
            model => model.Admitted);

        Gauge(text, "agenthost_tokens_per_second", "Generated tokens per second of generation time, since start.",
            model => Ratio(Get("agenthost_completion_tokens_total", model), Get("agenthost_generation_seconds_total", model)));
        Gauge(text, "agenthost_speculative_mat", "Mean tokens accepted per verification forward (speculative strategies).",
            model => Ratio(Get("agenthost_speculative_tokens_total", model), Get("agenthost_speculative_forwards_total", model)));
        return text.ToString();
    }

    private void Gauge(StringBuilder text, string name, string help, Func<HostedModel, double?> value)
    {
        text.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n');
        text.Append("# TYPE ").Append(name).Append(" gauge\n");
        foreach (var hosted in models.Loaded)
        {
            if (value(hosted) is { } v)
                Line(text, name, Labels(hosted.Name), v);
        }
    }

    private static double? Ratio(double numerator, double denominator) => denominator > 0 ? numerator / denominator : null;

    private void Add(string name, string labels, double amount) => _counters.AddOrUpdate((name, labels), amount, (_, current) => current + amount);

    private double Get(string name, HostedModel model) => _counters.GetValueOrDefault((name, Labels(model.Name)));

    private static string Labels(string model) => $"model=\"{model}\"";

    private static void Line(StringBuilder text, string name, string labels, double value)
        => text.Append(name).Append('{').Append(labels).Append("} ").Append(value.ToString("R", CultureInfo.InvariantCulture)).Append('\n');
}
