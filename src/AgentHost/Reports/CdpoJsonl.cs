using System.Text;
using System.Text.Json;
using AgentHost.Llama;
using AgentHost.Llama.Analysis;

namespace AgentHost.Reports;

/// <summary>
/// cDPO data as JSON Lines: reads preference pairs (<c>prompt</c>, <c>chosen</c>, <c>rejected</c>: TRL's DPO layout)
/// and writes one <see cref="CdpoRecord"/> per line, snake_case, the pair's fields first so a DPO trainer reads it as is.
/// </summary>
internal static class CdpoJsonl
{
    private static readonly JsonSerializerOptions _lineOptions = new(AnalysisRendering.JsonOptions) { WriteIndented = false };

    /// <summary>One record as one line (no newline).</summary>
    public static string ToLine(CdpoRecord record) => JsonSerializer.Serialize(record, _lineOptions);

    /// <summary>The records as a JSONL document.</summary>
    public static string ToJsonl(IEnumerable<CdpoRecord> records)
    {
        var text = new StringBuilder();
        foreach (var record in records)
            text.Append(ToLine(record)).Append('\n');
        return text.ToString();
    }

    /// <summary>
    /// The records as the paper trainer's column JSON (<c>train_cdpo.py</c> <c>get_cdpo_train_dataset</c>): one object
    /// with the columns <c>prompt</c>, <c>chosen</c>, <c>rejected</c> and <c>prob_result</c>, equally long (the trainer
    /// zips them and builds a <c>Dataset.from_dict</c> of the whole object, so nothing else may be there), each
    /// <c>prob_result</c> <c>{"pos": {"ce_prob": [...], "response_start_idx": n, "text": ...}, "neg": {...}}</c>.
    /// </summary>
    public static string ToPaperJson(IReadOnlyList<CdpoRecord> records)
    {
        static object Side(CdpoProbResult probs) => new Dictionary<string, object>
        {
            ["ce_prob"] = probs.CeProb,
            ["response_start_idx"] = probs.ResponseStartIdx,
            ["text"] = probs.Text,
        };
        var columns = new Dictionary<string, object>
        {
            ["prompt"] = records.Select(r => r.Prompt).ToArray(),
            ["chosen"] = records.Select(r => r.Chosen).ToArray(),
            ["rejected"] = records.Select(r => r.Rejected).ToArray(),
            ["prob_result"] = records.Select(r => new Dictionary<string, object> { ["pos"] = Side(r.PositiveProbs), ["neg"] = Side(r.NegativeProbs) }).ToArray(),
        };
        return JsonSerializer.Serialize(columns, AnalysisRendering.JsonOptions);
    }

    /// <summary>Parses preference pairs, one JSON object per non-blank line; a bad line is one clear error naming it.</summary>
    public static IReadOnlyList<CdpoPair> ReadPairs(string text, string source)
    {
        var pairs = new List<CdpoPair>();
        var number = 0;
        foreach (var raw in text.Split('\n'))
        {
            number++;
            var line = raw.Trim();
            if (line.Length == 0)
                continue;
            try
            {
                using var document = JsonDocument.Parse(line);
                var root = document.RootElement;
                if (root.ValueKind != JsonValueKind.Object)
                    throw Bad(source, number, "is not a JSON object");
                pairs.Add(new CdpoPair(Field(root, "prompt", source, number), Field(root, "chosen", source, number), Field(root, "rejected", source, number)));
            }
            catch (JsonException e)
            {
                throw Bad(source, number, $"is not valid JSON ({e.Message})");
            }
        }
        if (pairs.Count == 0)
            throw new AgentHostException(ErrorKind.InvalidArgument, $"{source} has no preference pairs (one JSON object per line with prompt, chosen and rejected).");
        return pairs;
    }

    private static string Field(JsonElement root, string name, string source, int number)
        => root.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String && value.GetString() is { Length: > 0 } text
            ? text
            : throw Bad(source, number, $"needs a non-empty string '{name}'");

    private static AgentHostException Bad(string source, int number, string what)
        => new(ErrorKind.InvalidArgument, $"{source} line {number} {what}.");
}
