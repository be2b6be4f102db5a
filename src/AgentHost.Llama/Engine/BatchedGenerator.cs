using System.Diagnostics;
using System.Threading.Channels;
using AgentHost.Llama.Decoding;
using AgentHost.Llama.Models;

namespace AgentHost.Llama.Engine;

/// <summary>
/// Continuous batching for plain decoding (greedy and sampling), built the way llama-server does it: the slots are
/// the sequences of one shared context (<see cref="ModelSettings.Sequences"/> of them, one unified KV cache of
/// ContextSize cells), every step decodes one token for every generating request and the next prompt tokens of
/// requests that are joining, all in one batch, and new requests join between steps. Each slot keeps its cache
/// after its request ends: a new request takes the free slot that shares the longest prefix with its prompt and
/// prefills only the rest (the prompt cache of multi-turn chats). A request is admitted once its prompt plus max
/// tokens fit beside what running requests reserve; idle slots' caches are dropped, least recently used first, to
/// make room. Batched decodes may differ from one-at-a-time decodes in the last bits of the logits, so a greedy
/// reply can differ from its serial result where the top two tokens are nearly tied.
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
    private Job?[] _slots = [];        // the request running in each sequence, or null when the slot is free
    private long[] _lastUsed = [];     // step at which each slot's request ended (least recently used is evicted first)
    private long _step;
    private int _pending;
    private int _disposed;

    /// <summary>Starts the batching loop for <paramref name="model"/> (its session is created on its scheduler).</summary>
    public BatchedGenerator(LlamaModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        _model = model;
        _loop = Task.Run(LoopAsync);
    }

    /// <summary>Requests waiting or running.</summary>
    public int Pending => Volatile.Read(ref _pending);

    /// <summary>
    /// Whether a request can be batched: a batchable strategy (greedy or plain sampling) without a grammar. Speculative
    /// strategies, cautious decoding, tool tokens and grammar-constrained requests run on a session slot instead.
    /// </summary>
    public static bool CanRun(StrategyDescriptor strategy, GenerationRequest request)
        => strategy.Batchable && request.Grammar is null;

    /// <summary>Generates <paramref name="request"/> with greedy choice (<paramref name="sample"/> false) or sampling.</summary>
    public Task<GenerationResult> GenerateAsync(GenerationRequest request, bool sample, CancellationToken cancellationToken)
        => Enqueue(request, sample, null, cancellationToken);

    /// <summary>As <see cref="GenerateAsync"/>, streaming the text; the last update carries the result.</summary>
    public IAsyncEnumerable<GenerationUpdate> GenerateStreamingAsync(GenerationRequest request, bool sample, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        request = request.ForRun();
        return GenerationStream.Run((onText, token) => Enqueue(request, sample, onText, token), request.MaxTokens, cancellationToken, request.Recorder);
    }

    private Task<GenerationResult> Enqueue(GenerationRequest request, bool sample, Action<string>? onText, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        request = request.ForRun();
        request.Validate();
        request.ValidateFor(_model.Vocabulary.Count);
        if (request.Grammar is not null)
            throw new AgentHostException(ErrorKind.InvalidArgument, "Batched generation does not take a grammar.");
        var tokens = request.PromptTokens is { } given ? [.. given] : _model.Tokenize(request.Prompt, _model.Vocabulary.AddBos);
        if (tokens.Length >= _model.ContextSize)
        {
            throw new AgentHostException(ErrorKind.ContextOverflow,
                $"The prompt is {tokens.Length} tokens but the context holds {_model.ContextSize}; shorten it or raise ContextSize.");
        }
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
            while (!_stop.IsCancellationRequested)
            {
                if (_active.Count == 0 && _waiting.Count == 0)
                    _waiting.Add(await _incoming.Reader.ReadAsync(_stop.Token).ConfigureAwait(false));
                if (_session is null)
                {
                    // Created with the first request: a client that never batches holds no second context.
                    _session = await _model.CreateSessionAsync(_stop.Token).ConfigureAwait(false);
                    _slots = new Job?[_session.SequenceCount];
                    _lastUsed = new long[_session.SequenceCount];
                }
                await _model.Scheduler.RunAsync(RunSteps, _stop.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
        catch (ChannelClosedException)
        {
        }
        catch (Exception e)
        {
            // The shared context could not be created: every request fails with the reason.
            foreach (var job in _waiting)
                job.Completion.TrySetException(e);
            while (_incoming.Reader.TryRead(out var job))
                job.Completion.TrySetException(e);
        }
    }

    /// <summary>
    /// Steps back to back on the scheduler thread while requests run, taking new requests in between: returning to the
    /// loop after every step cost a thread-pool hop and a scheduler wake-up per token (a lone request ran at about half
    /// the speed of a plain one). Other work queued for the model (its sessions, a tool's prompt) gets its turn between
    /// steps: the loop yields as soon as any is waiting.
    /// </summary>
    private void RunSteps()
    {
        do
        {
            while (_incoming.Reader.TryRead(out var more))
                _waiting.Add(more);
            Step();
        }
        while (_active.Count > 0 && !_stop.IsCancellationRequested && !_model.Scheduler.HasQueuedWork);
    }

    private void Step()
    {
        var session = _session!;
        _step++;
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
            FillBatch(session);
            session.Decode();
        }
        catch (Exception e)
        {
            for (var i = _active.Count - 1; i >= 0; i--)
            {
                var job = _active[i];
                session.RemoveSequence(job.Sequence);   // what the failed decode left is unknown
                End(job, () => job.Completion.TrySetException(e));
            }
            return;
        }

        var requests = 0;
        foreach (var job in _active)
            requests += job.BatchIndex >= 0 || job.Fed > job.FedBefore ? 1 : 0;
        for (var i = _active.Count - 1; i >= 0; i--)
        {
            var job = _active[i];
            if (job.BatchIndex < 0 && job.Fed == job.FedBefore)
                continue;
            job.DecodeCalls++;
            job.Steps++;
            job.BatchedRequests += requests;
            if (job.BatchIndex >= 0)
                Choose(session, job);
        }
    }

    /// <summary>
    /// One token for every generating request, then as many prompt tokens of joining requests as the batch holds
    /// (logits only for a prompt's last token). Sets each job's batch index, or -1 when it has no logits this step.
    /// </summary>
    private void FillBatch(InferenceSession session)
    {
        session.ClearBatch();
        foreach (var job in _active)
        {
            job.FedBefore = job.Fed;
            job.BatchIndex = job.Fed == job.Prompt.Length ? session.AddToBatch(job.Next, session.GetPast(job.Sequence), job.Sequence, logits: true) : -1;
        }
        foreach (var job in _active)
        {
            if (job.Fed == job.Prompt.Length)
                continue;
            var room = session.BatchCapacity - session.BatchCount;
            if (room == 0)
                break;
            var end = Math.Min(job.Prompt.Length, job.Fed + room);
            for (; job.Fed < end; job.Fed++)
            {
                var last = job.Fed == job.Prompt.Length - 1;
                var index = session.AddToBatch(job.Prompt[job.Fed], job.Fed, job.Sequence, logits: last);
                if (last)
                    job.BatchIndex = index;
            }
        }
    }

    /// <summary>
    /// Gives waiting requests, in arrival order, the free slot whose cache shares the longest prefix with their prompt,
    /// while their reservation (prompt plus max tokens) fits the context; their prompts are decoded in the next steps.
    /// </summary>
    private void Admit(InferenceSession session)
    {
        while (_waiting.Count > 0)
        {
            var job = _waiting[0];
            var slot = ChooseSlot(session, job, out var cached);
            if (slot < 0)
                return;
            job.Reserved = Math.Min(job.Prompt.Length + job.Request.MaxTokens, session.ContextSize);
            if (!MakeRoom(session, slot, job.Reserved))
                return;   // running requests hold the cells it needs: it joins when one of them ends

            _waiting.RemoveAt(0);
            _slots[slot] = job;
            job.Sequence = slot;
            session.RemoveSequence(slot, cached);
            job.Fed = job.CachedPromptTokens = cached;
            job.Clock.Restart();
            if (job.Sampler is { } sampler)
            {
                foreach (var token in job.Prompt)
                    sampler.Accept(token);
            }
            _active.Add(job);
        }
    }

    /// <summary>The free slot with the longest usable cached prefix (ties: least recently used), or -1 when every slot runs a request.</summary>
    private int ChooseSlot(InferenceSession session, Job job, out int cached)
    {
        var best = -1;
        cached = -1;
        for (var s = 0; s < _slots.Length; s++)
        {
            if (_slots[s] is not null)
                continue;
            // At most all but the last prompt token: its logits are needed.
            var shared = job.Request.ReusePrefix ? Math.Min(session.GetTokens(s).CommonPrefixLength(job.Prompt), job.Prompt.Length - 1) : 0;
            if (shared > cached || (shared == cached && _lastUsed[s] < _lastUsed[best]))
            {
                best = s;
                cached = shared;
            }
        }
        cached = Math.Max(cached, 0);
        return best;
    }

    /// <summary>
    /// Whether <paramref name="reserved"/> cells for <paramref name="slot"/> fit beside the running requests' reservations
    /// and the idle slots' caches, dropping idle caches (least recently used first) until they do.
    /// </summary>
    private bool MakeRoom(InferenceSession session, int slot, int reserved)
    {
        var used = reserved;
        foreach (var job in _active)
            used += job.Reserved;
        if (used > session.ContextSize)
            return false;
        for (var s = 0; s < _slots.Length; s++)
        {
            if (s != slot && _slots[s] is null)
                used += session.GetPast(s);
        }
        while (used > session.ContextSize)
        {
            var oldest = -1;
            for (var s = 0; s < _slots.Length; s++)
            {
                if (s != slot && _slots[s] is null && session.GetPast(s) > 0 && (oldest < 0 || _lastUsed[s] < _lastUsed[oldest]))
                    oldest = s;
            }
            used -= session.GetPast(oldest);
            session.RemoveSequence(oldest);
        }
        return true;
    }

    /// <summary>Picks the job's next token from its logits; ends the job when it stops.</summary>
    private void Choose(InferenceSession session, Job job)
    {
        if (job.Output.Tokens.Count == 0)
            job.PrefillTime = job.Clock.Elapsed;
        var raw = session.GetLogits(job.BatchIndex);
        var logits = raw;
        if (job.Request.LogitBias is { } bias)
        {
            job.Biased ??= new float[raw.Length];
            raw.CopyTo(job.Biased);
            LogitBias.Apply(bias, job.Biased);
            logits = job.Biased;
        }
        var token = job.Sampler is { } sampler ? sampler.Sample(logits) : TokenSampler.ArgMax(logits);
        if (job.Request.Recorder is { } recorder && !job.Output.IsEnd(token))
            recorder.Record(raw, token);
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

    /// <summary>Ends a running request; its slot keeps its cache for the next request that shares the prefix.</summary>
    private void End(Job job, Action complete)
    {
        _active.Remove(job);
        _slots[job.Sequence] = null;
        _lastUsed[job.Sequence] = _step;
        Interlocked.Decrement(ref _pending);
        complete();
    }

    private static GenerationResult Result(Job job) => new()
    {
        Strategy = (job.Sampler is null ? DecodingStrategies.Greedy : DecodingStrategies.Sample).Name,
        Tokens = job.Output.Tokens,
        Text = job.Output.Complete(),
        StopReason = job.Output.StopReason ?? StopReason.MaxTokens,
        Logprobs = job.Request.Recorder?.All,
        Stats = new GenerationStats
        {
            PromptTokens = job.Prompt.Length,
            CachedPromptTokens = job.CachedPromptTokens,
            GeneratedTokens = job.Output.Tokens.Count,
            DecodeCalls = job.DecodeCalls,
            PrefillTime = job.PrefillTime,
            Elapsed = job.Clock.Elapsed,
            Seed = job.Sampler?.Seed,
            // Mean number of requests decoded together in this request's steps.
            Extra = new Dictionary<string, double> { ["mean_batch"] = job.Steps == 0 ? 1 : (double)job.BatchedRequests / job.Steps },
        },
    };

    /// <summary>Stops the loop; requests still waiting or running are cancelled.</summary>
    public void Dispose()
    {
        // A client (and so its batcher) may be disposed more than once, e.g. by a using and by its DI container.
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
            return;
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
        while (_incoming.Reader.TryRead(out var job))
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
        public int CachedPromptTokens { get; set; }
        /// <summary>Prompt tokens in the slot's cache (or in the pending batch); generation starts once all are.</summary>
        public int Fed { get; set; }
        public int FedBefore { get; set; }
        public int Next { get; set; }
        public int BatchIndex { get; set; } = -1;
        public int DecodeCalls { get; set; }
        public long BatchedRequests { get; set; }
        public int Steps { get; set; }
        public TimeSpan PrefillTime { get; set; }
        /// <summary>The logits with the request's biases added (only for a request with logit_bias).</summary>
        public float[]? Biased { get; set; }
    }
}
