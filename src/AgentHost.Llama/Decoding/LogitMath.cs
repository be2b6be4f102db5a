namespace AgentHost.Llama.Decoding;

/// <summary>Numerically stable reductions over a logits row (accumulated in double precision).</summary>
public static class LogitMath
{
    /// <summary>The largest logit and log(sum(exp(z))) of <paramref name="logits"/>.</summary>
    public static (float Max, double LogSumExp) LogSumExp(ReadOnlySpan<float> logits)
    {
        var max = float.NegativeInfinity;
        foreach (var z in logits)
            max = Math.Max(max, z);
        var sum = 0.0;
        foreach (var z in logits)
            sum += Math.Exp(z - max);
        return (max, max + Math.Log(sum));
    }

    /// <summary>Entropy (nats) of softmax(z), given its <paramref name="logSumExp"/>: lse - sum(p z).</summary>
    public static double Entropy(ReadOnlySpan<float> logits, double logSumExp)
    {
        var expected = 0.0;
        foreach (var z in logits)
        {
            var p = Math.Exp(z - logSumExp);
            if (p > 0)
                expected += p * z;
        }
        return Math.Max(0, logSumExp - expected);
    }

    /// <summary>log softmax(z)[token].</summary>
    public static double LogSoftmaxAt(ReadOnlySpan<float> logits, int token) => logits[token] - LogSumExp(logits).LogSumExp;
}
