using AgentHost.Llama.Engine;

namespace AgentHost.Llama.Tests;

/// <summary>
/// The one near-tie rule for every test that compares batched, concurrent or speculative greedy output with a serial
/// greedy run. A decode of the same sequence in a batch of another shape sums in another order, so its logits differ
/// from the serial decode's in the last bits (<c>BatchShapeNoiseTests</c> measures how much); greedy may then
/// pick the other token exactly where the serial run's top logits are that close. So: the two outputs must agree up
/// to their first difference, and there the serial run's logit of its own token may exceed the logit of the token the
/// other run chose by less than <see cref="Tolerance"/>. After that point the runs continue from different text and
/// nothing more is compared.
/// </summary>
internal static class NearTie
{
    /// <summary>
    /// The largest lead of the serial choice over the other run's choice that counts as a near-tie: 0.02. Measured on
    /// stories260K (<c>BatchShapeNoiseTests</c>: 3 prompts x 64 steps, batches of 2-4 sequences and of 2-16 tokens of one
    /// sequence, LLamaSharp 0.30.0 CPU on a 2-core x86-64 machine), a batched decode moves the serial argmax's lead over
    /// any close token by at most 6.6e-3; the tolerance is three times that, and that test fails if the noise ever
    /// comes within a factor of 2 of it.
    /// </summary>
    public const float Tolerance = 0.02f;

    /// <summary>How two greedy outputs of one prompt compare.</summary>
    /// <param name="Agreed">Tokens equal from the start (the compared length).</param>
    /// <param name="Exact">Whether the outputs are identical.</param>
    /// <param name="Gap">At a difference: the serial logit of the serial token minus that of the other run's token.</param>
    public readonly record struct Comparison(int Agreed, bool Exact, float Gap);

    /// <summary>
    /// Compares <paramref name="actual"/> (a batched, concurrent or speculative greedy output) with
    /// <paramref name="expected"/> (the serial greedy output of the same prompt) under the near-tie rule, and fails the
    /// test when they differ anywhere but at a near-tie of the serial run. A run that ended (end of generation) where
    /// the other went on is compared as having chosen the model's best end-of-generation token.
    /// </summary>
    /// <param name="session">A session of the model whose sequence 0 may be used (it is reset).</param>
    /// <param name="prompt">The prompt tokens both runs started from (BOS included where the runs had one).</param>
    /// <param name="expected">The serial run's generated tokens.</param>
    /// <param name="actual">The other run's generated tokens.</param>
    /// <param name="what">Names the case in a failure message.</param>
    public static async Task<Comparison> AssertEqualUpToNearTieAsync(InferenceSession session, IReadOnlyList<int> prompt,
        IReadOnlyList<int> expected, IReadOnlyList<int> actual, string what)
    {
        var agreed = 0;
        while (agreed < expected.Count && agreed < actual.Count && expected[agreed] == actual[agreed])
            agreed++;
        if (agreed == expected.Count && agreed == actual.Count)
            return new Comparison(agreed, true, 0);
        return await AssertNearTieAsync(session, prompt, expected, agreed, (s, logits) => logits[Choice(s, logits, actual, agreed)], what);
    }

    /// <summary>
    /// As <see cref="AssertEqualUpToNearTieAsync"/> where the other run is known only as text (e.g. over HTTP): the
    /// serial tokens are followed while their bytes stay a prefix of <paramref name="actualText"/>; at the first one
    /// that does not, the other run chose a token whose bytes continue its text (or ended, where its text ends), and the
    /// best such token must be within the tolerance of the serial choice.
    /// </summary>
    public static async Task<Comparison> AssertTextEqualUpToNearTieAsync(InferenceSession session, IReadOnlyList<int> prompt,
        IReadOnlyList<int> expected, string actualText, string what)
    {
        var vocabulary = session.Model.Vocabulary;
        var actual = System.Text.Encoding.UTF8.GetBytes(actualText);
        var agreed = 0;
        var consumed = 0;
        while (agreed < expected.Count && actual.AsSpan(consumed).StartsWith(vocabulary.GetBytes(expected[agreed])))
            consumed += vocabulary.GetBytes(expected[agreed++]).Length;
        if (agreed == expected.Count && consumed == actual.Length)
            return new Comparison(agreed, true, 0);
        Assert.True(agreed < expected.Count, $"{what}: the other run's text goes on after the whole serial output ('{actualText}')");

        var rest = actual.AsSpan(consumed).ToArray();
        return await AssertNearTieAsync(session, prompt, expected, agreed, (s, logits) =>
        {
            var best = float.NegativeInfinity;
            for (var token = 0; token < logits.Length; token++)
            {
                var bytes = s.Model.Vocabulary.GetBytes(token);
                var fits = rest.Length == 0 ? s.Model.Vocabulary.IsEndOfGeneration(token) : bytes.Length > 0 && rest.AsSpan().StartsWith(bytes);
                if (fits)
                    best = Math.Max(best, logits[token]);
            }
            return best;
        }, what);
    }

    // Fails unless the serial logit of the serial token at `agreed` exceeds the other run's choice by less than the tolerance.
    private static async Task<Comparison> AssertNearTieAsync(InferenceSession session, IReadOnlyList<int> prompt, IReadOnlyList<int> expected,
        int agreed, Func<InferenceSession, float[], float> otherLogit, string what)
    {
        var gap = await session.RunAsync(s =>
        {
            var logits = SerialLogits(s, prompt, expected, agreed);
            var serialChoice = Choice(s, logits, expected, agreed);
            Assert.True(logits[serialChoice] >= Max(logits),
                $"{what}: the serial run's token {agreed} is not the argmax of its own serial logits; the reference run is not plain greedy");
            return logits[serialChoice] - otherLogit(s, logits);
        });
        Assert.True(gap < Tolerance,
            $"{what}: the outputs differ at token {agreed} where the serial logits are {gap} apart (not a near-tie, which is < {Tolerance}).");
        return new Comparison(agreed, false, gap);
    }

    // The serial run's logits after the prompt and the first `count` generated tokens: a prefill, then one token per decode.
    private static float[] SerialLogits(InferenceSession s, IReadOnlyList<int> prompt, IReadOnlyList<int> generated, int count)
    {
        s.Reset();
        var index = s.Prefill(prompt.ToArray(), 0);
        for (var i = 0; i < count; i++)
        {
            s.ClearBatch();
            index = s.AddToBatch(generated[i], s.GetPast(0), 0, logits: true);
            s.Decode();
        }
        return s.GetLogits(index).ToArray();
    }

    // The token a run chose at `index`: its token there, or, where it ended, its best end-of-generation token.
    private static int Choice(InferenceSession s, float[] logits, IReadOnlyList<int> tokens, int index)
    {
        if (index < tokens.Count)
            return tokens[index];
        var best = -1;
        for (var token = 0; token < logits.Length; token++)
        {
            if (s.Model.Vocabulary.IsEndOfGeneration(token) && (best < 0 || logits[token] > logits[best]))
                best = token;
        }
        return best;
    }

    private static float Max(float[] values)
    {
        var max = float.NegativeInfinity;
        foreach (var value in values)
            max = Math.Max(max, value);
        return max;
    }
}
