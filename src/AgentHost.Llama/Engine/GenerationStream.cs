using System.Runtime.CompilerServices;
using System.Threading.Channels;
using AgentHost.Llama.Decoding;

namespace AgentHost.Llama.Engine;

/// <summary>
/// The one bridge from a generation's text callback on the model's thread to an async stream. The channel is bounded
/// by the request's token limit (a strategy emits at most one piece per accepted token, plus the final flush), so the
/// model thread never waits for a slow reader while memory stays bounded; a reader that stops early cancels the generation.
/// </summary>
internal static class GenerationStream
{
    // The largest context a model may have (ModelSettings.ContextSize's bound), plus the final flush.
    private const long MaxPieces = (1L << 24) + 2;

    public static async IAsyncEnumerable<GenerationUpdate> Run(
        Func<Action<string>, CancellationToken, Task<GenerationResult>> start, int maxTokens, [EnumeratorCancellation] CancellationToken cancellationToken,
        TokenLogprobRecorder? recorder = null)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        // A client may ask for int.MaxValue tokens: the capacity is computed without overflow and never above what a
        // context can hold (a generation cannot accept more tokens than its context has positions).
        var capacity = (int)Math.Min((long)Math.Max(maxTokens, 1) + 2, MaxPieces);
        // Each piece carries the log-probabilities of the tokens recorded since the previous one (taken on the model's
        // thread, where they are recorded, as the piece is written).
        var pieces = Channel.CreateBounded<(string Text, TokenLogprob[]? Logprobs)>(new BoundedChannelOptions(capacity)
        {
            SingleReader = true,
            SingleWriter = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        var generation = start(piece => Write(pieces.Writer, (piece, recorder?.TakeNew()), stop.Token), stop.Token);
        // Errors surface from awaiting the generation below, with their own type.
        _ = generation.ContinueWith(_ => pieces.Writer.TryComplete(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

        GenerationResult result;
        try
        {
            await foreach (var piece in pieces.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                // Buffered pieces are not handed out once the reader cancelled.
                cancellationToken.ThrowIfCancellationRequested();
                yield return new GenerationUpdate(piece.Text, Logprobs: piece.Logprobs);
            }
            result = await generation.ConfigureAwait(false);
        }
        finally
        {
            // A reader that stops early (or cancels) must not leave the model decoding for nobody.
            if (!generation.IsCompleted)
            {
                await stop.CancelAsync().ConfigureAwait(false);
                await generation.ContinueWith(_ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default).ConfigureAwait(false);
            }
        }
        yield return new GenerationUpdate("", result, recorder?.TakeNew());
    }

    private static void Write(ChannelWriter<(string, TokenLogprob[]?)> writer, (string, TokenLogprob[]?) piece, CancellationToken cancellationToken)
    {
        if (!writer.TryWrite(piece))
            writer.WriteAsync(piece, cancellationToken).AsTask().GetAwaiter().GetResult();
    }
}
