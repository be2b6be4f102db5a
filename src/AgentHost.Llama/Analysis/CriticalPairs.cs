namespace AgentHost.Llama.Analysis;

/// <summary>
/// Preference pairs from a rollout analysis, for cDPO: at the critical token, every alternative whose completion the
/// verifier accepted is a chosen response and the trajectory from the critical token on the rejected one, after the
/// same context (the prompt and the trajectory before the critical token). Score them with <see cref="CdpoRecord.ScoreAsync"/>
/// (or <c>analyze contrast --pairs</c>) for the token weights.
/// </summary>
public static class CriticalPairs
{
    /// <summary>The pairs of <paramref name="report"/> (distinct chosen texts, in completion order); none without a critical token or a passing alternative.</summary>
    public static IReadOnlyList<CdpoPair> From(RolloutReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        if (report.Critical is not { } critical || report.Alternatives is not { } alternatives)
            return [];
        var context = report.Prompt + alternatives.PrefixText;
        var rejected = string.Concat(report.TokenTexts.Skip(critical.Length - 1));
        return [.. alternatives.Completions.Where(c => c.Passed && c.Text.Length > 0 && c.Text != rejected).Select(c => c.Text).Distinct(StringComparer.Ordinal)
            .Select(chosen => new CdpoPair(context, chosen, rejected))];
    }
}
