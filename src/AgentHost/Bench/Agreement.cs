using System.Globalization;

namespace AgentHost.Bench;

/// <summary>How far two models' greedy outputs over the same prompts agree, token by token (a quantized model's own check).</summary>
internal static class Agreement
{
    /// <summary>
    /// Prompts with equal outputs; tokens before each prompt's first difference over the reference's tokens (the
    /// match rate: after a difference the texts part ways, so later positions say nothing); and positions equal at all.
    /// </summary>
    public static string Describe(IReadOnlyList<IReadOnlyList<int>> actual, IReadOnlyList<IReadOnlyList<int>> expected, string what)
    {
        int equal = 0, prefix = 0, total = 0, positions = 0;
        for (var i = 0; i < expected.Count; i++)
        {
            var a = actual[i];
            var e = expected[i];
            var n = 0;
            while (n < a.Count && n < e.Count && a[n] == e[n])
                n++;
            if (n == a.Count && n == e.Count)
                equal++;
            prefix += n;
            total += e.Count;
            for (var p = 0; p < Math.Min(a.Count, e.Count); p++)
                positions += a[p] == e[p] ? 1 : 0;
        }
        var ci = CultureInfo.InvariantCulture;
        return string.Format(ci, "{0}: {1}/{2} prompts equal; token-level match rate {3:P1} ({4}/{5} tokens before the first difference); {6:P1} of positions equal",
            what, equal, expected.Count, total == 0 ? 1 : (double)prefix / total, prefix, total, total == 0 ? 1 : (double)positions / total);
    }
}
