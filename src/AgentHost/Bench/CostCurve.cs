using System.Diagnostics;
using AgentHost.Llama.Models;

namespace AgentHost.Bench;

/// <summary>
/// The cost curve of continuous batching: C(b), the time of one decode of b sequences x 1 token over the time of a
/// 1-sequence decode, on a session like the batcher's (the model's own context parameters). With it the best
/// throughput b concurrent requests can reach is b / C(b) times one request's.
/// </summary>
internal static class CostCurve
{
    /// <summary>The batch sizes measured (those up to the model's Sequences).</summary>
    public static int[] Sizes(LlamaModel model) => [.. new[] { 1, 2, 4, 8, 16 }.Where(b => b <= model.Settings.Sequences)];

    /// <summary>Mean milliseconds per decode for each size, the sizes interleaved in rounds so that drifts hit them alike.</summary>
    /// <param name="model">The model.</param>
    /// <param name="position">Cached tokens every sequence holds before the timed decodes (the bench's prompt-and-reply length).</param>
    /// <param name="steps">Decodes per size and round.</param>
    /// <param name="cancellationToken">Stops the measurement.</param>
    public static async Task<Dictionary<int, double>> MeasureAsync(LlamaModel model, int position, int steps, CancellationToken cancellationToken)
    {
        var sizes = Sizes(model);
        using var session = await model.CreateSessionAsync(cancellationToken);
        return await session.RunAsync(s =>
        {
            // Every sequence holds the same `position` tokens (a copy of sequence 0), so each decode attends as far.
            var context = new int[position];
            for (var i = 0; i < position; i++)
                context[i] = (i * 7919 + 13) % model.Vocabulary.Count;
            s.Prefill(context, 0, cancellationToken);
            for (var sequence = 1; sequence < sizes[^1]; sequence++)
                s.CopySequence(0, sequence);
            var total = sizes.ToDictionary(b => b, _ => 0.0);
            const int rounds = 3;
            for (var round = 0; round < rounds; round++)
            {
                foreach (var b in sizes)
                {
                    var clock = Stopwatch.StartNew();
                    for (var step = 0; step < steps; step++)
                    {
                        s.ClearBatch();
                        for (var sequence = 0; sequence < b; sequence++)
                            s.AddToBatch(context[(step + sequence) % position], position + step, sequence, logits: true);
                        s.Decode(cancellationToken);
                    }
                    total[b] += clock.Elapsed.TotalMilliseconds / steps;
                    for (var sequence = 0; sequence < b; sequence++)
                        s.RemoveSequence(sequence, position);
                }
            }
            return total.ToDictionary(p => p.Key, p => p.Value / rounds);
        }, cancellationToken);
    }
}
