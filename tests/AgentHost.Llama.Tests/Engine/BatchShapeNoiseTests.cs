using AgentHost.Llama.Decoding;
using AgentHost.Llama.Decoding.Strategies;
using AgentHost.Llama.Engine;

namespace AgentHost.Llama.Tests;

/// <summary>
/// Measures what <see cref="NearTie.Tolerance"/> is derived from: how far the logits of one sequence move when it is
/// decoded in batches of other shapes than the serial run's (one token per decode) on this machine's kernels.
/// </summary>
[Collection(Stories260KCollection.Name)]
public sealed class BatchShapeNoiseTests(Stories260KFixture fixture, Xunit.Abstractions.ITestOutputHelper output)
{
    private const int Steps = 64;

    private static readonly string[] _prompts = ["Once upon a time", "The sun was shining", "Sam had a toy car"];

    private static readonly string[] _others = ["The little dog", "Lily and Ben went to the park", "Tom had a red ball"];

    [Fact]
    public async Task Batch_shape_noise_stays_well_inside_the_near_tie_tolerance()
    {
        var noise = await fixture.Session.RunAsync(s =>
        {
            var results = new Dictionary<string, float>();
            void Note(string shape, float value) => results[shape] = Math.Max(results.GetValueOrDefault(shape), value);
            foreach (var text in _prompts)
            {
                var prompt = s.Model.Tokenize(text, addBos: true);
                var (tokens, serial) = SerialGreedy(s, prompt);
                for (var others = 1; others <= _others.Length; others++)
                    Note($"{others + 1} sequences, one token each", Concurrent(s, prompt, tokens, serial, others));
                foreach (var chunk in new[] { 2, 4, 8, 16 })
                    Note($"{chunk} tokens of one sequence", Chunked(s, prompt, tokens, serial, chunk));
            }
            return results.Select(r => (Shape: r.Key, Noise: r.Value)).ToList();
        });

        foreach (var (shape, value) in noise)
            output.WriteLine($"{shape}: largest change of the serial argmax's lead = {value:E2}");
        var worst = noise.Max(n => n.Noise);
        Assert.True(worst * 2 < NearTie.Tolerance, $"batch-shape noise {worst:E2} is within a factor of 2 of the near-tie tolerance {NearTie.Tolerance}; re-derive the tolerance");
    }

    [Fact]
    public async Task The_near_tie_rule_accepts_equal_runs_and_refuses_a_difference_that_is_no_near_tie()
    {
        var prompt = fixture.Model.Tokenize("Once upon a time", addBos: true);
        var serial = (await fixture.Session.GenerateAsync(new GreedyStrategy(),
            new GenerationRequest { Prompt = "Once upon a time", MaxTokens = 12 })).Tokens;

        var same = await NearTie.AssertEqualUpToNearTieAsync(fixture.Session, prompt, serial, serial, "same");
        Assert.True(same.Exact);
        Assert.Equal(serial.Count, same.Agreed);

        // The runner-up at ", there was" is far behind the top: swapping it in is a bug, not noise.
        var wrong = serial.ToArray();
        wrong[5] = wrong[5] == 1 ? 3 : 1;
        var error = await Assert.ThrowsAnyAsync<Xunit.Sdk.XunitException>(() => NearTie.AssertEqualUpToNearTieAsync(fixture.Session, prompt, serial, wrong, "swapped"));
        Assert.Contains("differ at token 5", error.Message);
        var text = fixture.Model.Detokenize(wrong);
        await Assert.ThrowsAnyAsync<Xunit.Sdk.XunitException>(() => NearTie.AssertTextEqualUpToNearTieAsync(fixture.Session, prompt, serial, text, "swapped text"));
        await Assert.ThrowsAnyAsync<Xunit.Sdk.XunitException>(() => NearTie.AssertEqualUpToNearTieAsync(fixture.Session, prompt, serial, serial.Take(6).ToArray(), "ended early"));
    }

    // The serial greedy run: its tokens and the logits before each.
    private static (int[] Tokens, float[][] Logits) SerialGreedy(InferenceSession s, int[] prompt)
    {
        s.Reset();
        var index = s.Prefill(prompt, 0);
        var tokens = new int[Steps];
        var logits = new float[Steps][];
        for (var i = 0; i < Steps; i++)
        {
            logits[i] = s.GetLogits(index).ToArray();
            tokens[i] = ArgMax(logits[i]);
            s.ClearBatch();
            index = s.AddToBatch(tokens[i], s.GetPast(0), 0, logits: true);
            s.Decode();
        }
        return (tokens, logits);
    }

    // The same tokens decoded one per step next to `others` other sequences (continuous batching's shape).
    private static float Concurrent(InferenceSession s, int[] prompt, int[] tokens, float[][] serial, int others)
    {
        s.Reset();
        s.Prefill(prompt, 0);
        var otherNext = new int[others];
        for (var o = 0; o < others; o++)
            otherNext[o] = ArgMax(s.GetLogits(s.Prefill(s.Model.Tokenize(_others[o], addBos: true), o + 1)));
        var worst = 0f;
        for (var i = 0; i + 1 < Steps; i++)
        {
            s.ClearBatch();
            var index = s.AddToBatch(tokens[i], s.GetPast(0), 0, logits: true);
            var otherIndex = new int[others];
            for (var o = 0; o < others; o++)
                otherIndex[o] = s.AddToBatch(otherNext[o], s.GetPast(o + 1), o + 1, logits: true);
            s.Decode();
            worst = Math.Max(worst, Distance(s.GetLogits(index), serial[i + 1]));
            for (var o = 0; o < others; o++)
                otherNext[o] = ArgMax(s.GetLogits(otherIndex[o]));
        }
        return worst;
    }

    // The same tokens decoded `chunk` at a time with logits for each (a speculative verification's shape).
    private static float Chunked(InferenceSession s, int[] prompt, int[] tokens, float[][] serial, int chunk)
    {
        s.Reset();
        s.Prefill(prompt, 0);
        var worst = 0f;
        for (var start = 0; start + chunk < Steps; start += chunk)
        {
            s.ClearBatch();
            var first = -1;
            for (var j = 0; j < chunk; j++)
            {
                var index = s.AddToBatch(tokens[start + j], s.GetPast(0) + j, 0, logits: true);
                first = j == 0 ? index : first;
            }
            s.Decode();
            for (var j = 0; j < chunk; j++)
                worst = Math.Max(worst, Distance(s.GetLogits(first + j), serial[start + j + 1]));
        }
        return worst;
    }

    // How far the batched decode moves the serial argmax's lead over any token that could take its place (within 1 of it):
    // the quantity a near-tie compares.
    private static float Distance(ReadOnlySpan<float> batched, float[] serial)
    {
        var top = ArgMax(serial);
        var worst = 0f;
        for (var i = 0; i < serial.Length; i++)
        {
            if (serial[top] - serial[i] < 1f)
                worst = Math.Max(worst, Math.Abs((batched[top] - batched[i]) - (serial[top] - serial[i])));
        }
        return worst;
    }

    private static int ArgMax(ReadOnlySpan<float> logits)
    {
        var best = 0;
        for (var i = 1; i < logits.Length; i++)
        {
            if (logits[i] > logits[best])
                best = i;
        }
        return best;
    }
}
