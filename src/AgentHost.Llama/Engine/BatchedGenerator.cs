using System.Diagnostics;
using System.Threading.Channels;
using AgentHost.Llama.Decoding;
using AgentHost.Llama.Models;

namespace AgentHost.Llama.Engine;

/// <summary>
/// Continuous batching for plain decoding (greedy and sampling): concurrent requests share one context,
/// each in its own sequence of a cache split evenly between the sequences (ContextSize / Sequences cells each,
/// so a token attends only to its own request), and every step decodes one token of every active request in a
/// single batch. New requests join between steps when a sequence is free. Batched decodes may differ from one-at-a-time decodes in the last bits
/// of the logits, so a greedy reply can differ where two tokens are nearly tied.
/// </summary>
public sealed class BatchedGenerator : IDisposable
{
    private readonly LlamaModel _model;
    private readonly Channel<Job> _incoming = Channel.CreateUnbounded<Job>(new UnboundedChannelOptions { SingleReader = true });
    private readonly List<Job> _waiting = [];
    private readonly List<Job> _active = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private InferenceSession? _session;
    private int _pending;

    /// <summary>Starts the batching loop for <paramref name="model"/> (its sessions are created on its scheduler).</summary>
    public BatchedGenerator(LlamaModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        _model = model;
        _loop = Task.Run(LoopAsync);
    }

    /// <summary>Requests waiting or running.</summary>
    public int Pending => Volatile.Read(ref _pending);

    /// <summary>Whether a request can be batched: a batchable strategy (greedy or plain sampling), no grammar.</summary>
    public static bool CanRun(StrategyDescriptor strategy, GenerationRequest request)
        => strategy.Batchable && request.Grammar is null;

    /// <summary>Generates <paramref name="request"/> with greedy choice (<paramref name="sample"/> false) or sampling.</summary>
    public Task<GenerationResult> GenerateAsync(GenerationRequest request, bool sample, CancellationToken cancellationToken)
        => Enqueue(request, sample, null, cancellationToken);

    /// <summary>As <see cref="GenerateAsync"/>, streaming the text; the last update carries the result.</summary>
    public IAsyncEnumerable<GenerationUpdate> GenerateStreamingAsync(GenerationRequest request, bool sample, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        return GenerationStream.Run((onText, token) => Enqueue(request, sample, onText, token), request.MaxTokens, cancellationToken);
    }

    private Task<GenerationResult> Enqueue(GenerationRequest request, bool sample, Action<string>? onText, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        request.Validate();
        if (request.Grammar is not null)
            throw new AgentHostException(ErrorKind.InvalidArgument, "Batched generation does not take a grammar.");
        var tokens = request.PromptTokens is { } given ? [.. given] : _model.Tokenize(request.Prompt, _model.Vocabulary.AddBos);
        var sampler = sample ? new TokenSampler(request.Sampling ?? new SamplingOptions(), _model.Vocabulary.Count) : null;
        var output = new GenerationOutput(_model.Vocabulary, request.MaxTokens, request.Stop, onText, request.StopTokens);
        var job = new Job(request, tokens, sampler, output, cancellationToken);
        Interlocked.Increment(ref _pending);
        _incoming.Writer.TryWrite(job);
        return job.Completion.Task;
    }

    private async Task LoopAsync()
    {
        try
        {
            _session = await _model.CreateSplitCacheSessionAsync(_stop.Token).ConfigureAwait(false);
            while (!_stop.IsCancellationRequested)
            {
                if (_active.Count == 0 && _waiting.Count == 0)
                    _waiting.Add(await _incoming.Reader.ReadAsync(_stop.Token).ConfigureAwait(false));
                while (_incoming.Reader.TryRead(out var more))
                    _waiting.Add(more);
                // One step per scheduler work item: other users of the model get their turn in between.
                await _model.Scheduler.RunAsync(Step, _stop.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
        catch (ChannelClosedException)
        {
        }
    }

    private void Step()
    {
        var session = _session!;
        // Backwards: ending a job removes it from the list. (Per step, so no LINQ or copies.)
        for (var i = _active.Count - 1; i >= 0; i--)
        {
            var job = _active[i];
            if (job.Cancellation.IsCancellationRequested)
                End(job, () => job.Completion.TrySetCanceled(job.Cancellation));
        }
        for (var i = _waiting.Count - 1; i >= 0; i--)
        {
            var job = _waiting[i];
            if (!job.Cancellation.IsCancellationRequested)
                continue;
            _waiting.RemoveAt(i);
            Interlocked.Decrement(ref _pending);
            job.Completion.TrySetCanceled(job.Cancellation);
        }
        Admit(session);
        if (_active.Count == 0)
            return;

        try
        {
            session.ClearBatch();
            foreach (var job in _active)
                job.BatchIndex = session.AddToBatch(job.Next, session.GetPast(job.Sequence), job.Sequence, logits: true);
            session.Decode();
            var batchSize = _active.Count;
            for (var i = batchSize - 1; i >= 0; i--)
            {
                var job = _active[i];
                job.DecodeCalls++;
                job.BatchedTokens += batchSize;
                job.Steps++;
                Choose(session, job, job.BatchIndex);
            }
        }
        catch (Exception e)
        {
            for (var i = _active.Count - 1; i >= 0; i--)
            {
                var job = _active[i];
                End(job, () => job.Completion.TrySetException(e));
            }
        }
    }

    /// <summary>Prefills waiting requests into free sequences while their reservation fits the context.</summary>
    private void Admit(InferenceSession session)
    {
        while (_waiting.Count > 0 && _active.Count < session.SequenceCount)
        {
            var job = _waiting[0];
            var perSequence = session.ContextSize / session.SequenceCount;
            if (job.Prompt.Length >= perSequence)
            {
                _waiting.RemoveAt(0);
                Interlocked.Decrement(ref _pending);
                job.Completion.TrySetException(new AgentHostException(ErrorKind.ContextOverflow,
                    $"The prompt is {job.Prompt.Length} tokens but a batched request holds {perSequence} (ContextSize / Sequences); shorten it, raise ContextSize or turn batching off."));
                continue;
            }
            job.Reserved = Math.Min(job.Prompt.Length + job.Request.MaxTokens, perSequence);
            _waiting.RemoveAt(0);
            job.Sequence = Enumerable.Range(0, session.SequenceCount).First(s => _active.All(j => j.Sequence != s));
            _active.Add(job);
            try
            {
                session.RemoveSequence(job.Sequence);
                job.Clock.Restart();
                var before = session.DecodeCalls;
                var index = session.Prefill(job.Prompt, job.Sequence, job.Cancellation);
                job.DecodeCalls = session.DecodeCalls - before;
                job.PrefillTime = job.Clock.Elapsed;
                if (job.Sampler is { } sampler)
                {
                    foreach (var token in job.Prompt)
                        sampler.Accept(token);
                }
                Choose(session, job, index);
            }
            catch (Exception e)
            {
                End(job, () => job.Completion.TrySetException(e));
            }
        }
    }

    /// <summary>Picks the job's next token from its logits; ends the job when it stops.</summary>
    private void Choose(InferenceSession session, Job job, int index)
    {
        var logits = session.GetLogits(index);
        var token = job.Sampler is { } sampler ? sampler.Sample(logits) : TokenSampler.ArgMax(logits);
        var stop = job.Output.Accept(token);
        if (!stop && session.GetPast(job.Sequence) >= job.Reserved)
        {
            job.Output.StopFor(StopReason.ContextFull);
            stop = true;
        }
        if (!stop)
        {
            job.Next = token;
            return;
        }
        End(job, () => job.Completion.TrySetResult(Result(job)));
    }

    private void End(Job job, Action complete)
    {
        _active.Remove(job);
        _session!.RemoveSequence(job.Sequence);
        Interlocked.Decrement(ref _pending);
        complete();
    }

    private static GenerationResult Result(Job job) => new()
    {
        Strategy = (job.Sampler is null ? DecodingStrategies.Greedy : DecodingStrategies.Sample).Name,
        Tokens = job.Output.Tokens,
        Text = job.Output.Complete(),
        StopReason = job.Output.StopReason ?? StopReason.MaxTokens,
        Stats = new GenerationStats
        {
            PromptTokens = job.Prompt.Length,
            GeneratedTokens = job.Output.Tokens.Count,
            DecodeCalls = job.DecodeCalls,
            PrefillTime = job.PrefillTime,
            Elapsed = job.Clock.Elapsed,
            Seed = job.Sampler?.Seed,
            // Mean number of requests decoded together in this request's steps.
            Extra = new Dictionary<string, double> { ["mean_batch"] = job.Steps == 0 ? 1 : (double)job.BatchedTokens / job.Steps },
        },
    };

    /// <summary>Stops the loop; requests still waiting or running are cancelled.</summary>
    public void Dispose()
    {
        _stop.Cancel();
        _incoming.Writer.TryComplete();
        try
        {
            _loop.Wait(TimeSpan.FromSeconds(10));
        }
        catch (AggregateException)
        {
        }
        foreach (var job in _active.Concat(_waiting))
            job.Completion.TrySetCanceled();
        _session?.Dispose();
        _stop.Dispose();
    }

    private sealed class Job(GenerationRequest request, int[] prompt, TokenSampler? sampler, GenerationOutput output, CancellationToken cancellation)
    {
        public GenerationRequest Request { get; } = request;
        public int[] Prompt { get; } = prompt;
        public TokenSampler? Sampler { get; } = sampler;
        public CancellationToken Cancellation { get; } = cancellation;
        public GenerationOutput Output { get; } = output;
        public TaskCompletionSource<GenerationResult> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public Stopwatch Clock { get; } = new();
        public int Sequence { get; set; } = -1;
        public int Reserved { get; set; }
        public int Next { get; set; }
        public int BatchIndex { get; set; }
        public int DecodeCalls { get; set; }
        public long BatchedTokens { get; set; }
        public int Steps { get; set; }
        public TimeSpan PrefillTime { get; set; }
    }
}
