using System.Collections.Concurrent;
using System.Threading.Channels;
using AgentHost.Llama.Decoding;
using AgentHost.Llama.Models;

namespace AgentHost.Llama.Engine;

/// <summary>
/// The one engine of a model: every request, whatever its strategy, runs as a slot of one shared llama.cpp context and
/// every step decodes all their tokens in one batch, the way llama-server's slot loop does. A slot is a set of sequence
/// ids of that context: the request's own (which keeps its KV cache after the request ends, as the prompt cache of the
/// next request that shares its prefix) and the scratch sequences its strategy asks for (draft-tree leaves, cautious
/// trials, tool-token argument mode). A strategy is a step machine over its <see cref="InferenceSession"/>: it adds its
/// tokens and awaits <see cref="InferenceSession.DecodeAsync"/>, which returns after the shared decode; a tool it calls
/// runs while the other requests keep decoding. A request is admitted once its sequences are free and its reservation
/// (prompt plus max tokens plus the scratch cells its strategy may use: <see cref="IDecodingStrategy.ScratchCells"/>) fits
/// beside the running ones (it is the request's context: what it may use, so it never runs out of cells in a crowd); idle caches are dropped, least recently used first, to make room. A prompt that shares a prefix with any
/// sequence (an idle cache or a running request's) copies that prefix (llama.cpp's sequence copy: the cells are shared,
/// nothing is recomputed), so agents with one system prompt and tool list pay its prefill once. Batched decodes may
/// differ from one-at-a-time decodes in the last bits of the logits, so a greedy reply can differ from its serial result
/// where the top two tokens are nearly tied.
/// </summary>
public sealed class DecodeEngine : IDisposable, ISessionHost
{
    private readonly LlamaModel _model;
    private readonly Func<IDecodeBackend> _createBackend;
    private readonly Channel<Job> _incoming = Channel.CreateUnbounded<Job>();
    private readonly ConcurrentQueue<InferenceSession> _outsideDone = new();   // sessions whose outside work finished
    private readonly List<Job> _waiting = [];
    private readonly List<Job> _active = [];
    private readonly List<InferenceSession> _awaitingDecode = [];
    private readonly List<InferenceSession> _resuming = [];
    private readonly List<InferenceSession> _awaitingRoom = [];
    private readonly List<Job> _releasing = [];   // ended jobs whose sequences free up after the next decode
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private DecodeContext? _context;
    private Job?[] _owner = [];    // the request using each sequence, or null when it is free (it may hold an idle cache)
    private bool[] _isHome = [];   // whether a sequence holds a request's tokens (a scratch sequence holds nothing between requests)
    private long[] _lastUsed = [];
    private long _step;
    private int _pending;
    private int _disposed;
    private readonly bool _batching;

    /// <summary>Starts the engine of <paramref name="model"/>; its context is created with the first request.</summary>
    /// <param name="model">The model.</param>
    /// <param name="hiddenStates">Whether decodes also return final hidden states (strategies such as tool tokens need them).</param>
    /// <param name="batching">Whether requests share decodes (continuous batching); off, one request decodes at a time.</param>
    public DecodeEngine(LlamaModel model, bool hiddenStates = false, bool batching = true)
        : this(model, () => new LlamaDecodeBackend(model, hiddenStates), batching)
    {
    }

    /// <summary>An engine on another decode backend (tests script one).</summary>
    internal DecodeEngine(LlamaModel model, Func<IDecodeBackend> createBackend, bool batching = true)
    {
        ArgumentNullException.ThrowIfNull(model);
        _model = model;
        _createBackend = createBackend;
        _batching = batching;
        _loop = Task.Run(LoopAsync);
    }

    /// <summary>Requests waiting or running.</summary>
    public int Pending => Volatile.Read(ref _pending);

    /// <summary>Runs <paramref name="strategy"/> on <paramref name="request"/> in the shared batch.</summary>
    public Task<GenerationResult> GenerateAsync(IDecodingStrategy strategy, GenerationRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        return Enqueue(strategy, request.ForRun(), null, cancellationToken);
    }

    /// <summary>As <see cref="GenerateAsync"/>, streaming the text; the last update carries the result.</summary>
    public IAsyncEnumerable<GenerationUpdate> GenerateStreamingAsync(IDecodingStrategy strategy, GenerationRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        request = request.ForRun();
        return GenerationStream.Run((onText, token) => Enqueue(strategy, request, onText, token), request.MaxTokens, cancellationToken, request.Recorder);
    }

    private Task<GenerationResult> Enqueue(IDecodingStrategy strategy, GenerationRequest request, Action<string>? onText, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(strategy);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) == 1, this);
        request.Validate();
        request.ValidateFor(_model.Vocabulary.Count);
        // Tokenized here, off the model's thread: admission chooses the slot by the prompt's tokens.
        if (request.PromptTokens is null)
            request = request with { PromptTokens = _model.Tokenize(request.Prompt, _model.Vocabulary.AddBos) };
        if (request.PromptTokens.Count >= _model.ContextSize)
        {
            throw new AgentHostException(ErrorKind.ContextOverflow,
                $"The prompt is {request.PromptTokens.Count} tokens but the context holds {_model.ContextSize}; shorten it or raise ContextSize.");
        }
        var job = new Job(strategy, request, onText, cancellationToken, _model.Scheduler.IsAwaitingCurrentFlow);
        Interlocked.Increment(ref _pending);
        if (!_incoming.Writer.TryWrite(job))
        {
            Interlocked.Decrement(ref _pending);
            throw new ObjectDisposedException(nameof(DecodeEngine));
        }
        return job.Completion.Task;
    }

    private async Task LoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                // Idle, or every running request waits for a tool: wait for a request or a tool to come back.
                if (!HasWork() && !await _incoming.Reader.WaitToReadAsync(_stop.Token).ConfigureAwait(false))
                    break;
                await _model.Scheduler.RunAsync(RunSteps, _stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                break;
            }
            catch (ObjectDisposedException)
            {
                break;   // the model (its scheduler) is gone
            }
            catch (Exception e)
            {
                // The shared context could not be created, or a step failed unexpectedly: every request fails with the
                // reason (none waits for ever) and the engine serves the next ones.
                try
                {
                    await _model.Scheduler.RunAsync(() => FailAll(e), _stop.Token).ConfigureAwait(false);
                }
                catch (Exception) when (_stop.IsCancellationRequested)
                {
                    break;
                }
                catch (ObjectDisposedException)
                {
                    break;
                }
            }
        }
    }

    private void FailAll(Exception error)
    {
        foreach (var job in _waiting)
        {
            Interlocked.Decrement(ref _pending);
            job.Completion.TrySetException(error);
        }
        _waiting.Clear();
        while (_incoming.Reader.TryRead(out var job))
        {
            if (job == Job.WakeUp)
                continue;
            Interlocked.Decrement(ref _pending);
            job.Completion.TrySetException(error);
        }
        foreach (var job in _active.ToList())
        {
            job.Session?.Abandon();
            End(job, null, error);
        }
        _awaitingDecode.Clear();
        _awaitingRoom.Clear();
        _releasing.Clear();
        // What the failed step left in the cache is unknown: the next request starts on a new context.
        _context?.Dispose();
        _context = null;
    }

    private bool HasWork() => _waiting.Count > 0 || _awaitingDecode.Count > 0 || _awaitingRoom.Count > 0 || !_outsideDone.IsEmpty
        || _incoming.Reader.Count > 0 || _releasing.Count > 0;

    /// <summary>
    /// Steps back to back on the scheduler thread while there is work, taking new requests in between; other work queued
    /// for the model (a standalone session, a tool's own prompt) gets its turn between steps.
    /// </summary>
    private void RunSteps()
    {
        _context ??= CreateContext();
        do
        {
            while (_incoming.Reader.TryRead(out var job))
            {
                if (job == Job.WakeUp)
                    continue;
                // A request from a tool that decoding waits for goes first: the request that called the tool holds its slot.
                if (job.FromTool)
                    _waiting.Insert(0, job);
                else
                    _waiting.Add(job);
            }
            Step(_context);
        }
        while (HasWork() && !_stop.IsCancellationRequested && !_model.Scheduler.HasQueuedWork);
    }

    private DecodeContext CreateContext()
    {
        var context = new DecodeContext(_model, _createBackend());
        _owner = new Job?[context.SequenceCount];
        _isHome = new bool[context.SequenceCount];
        _lastUsed = new long[context.SequenceCount];
        return context;
    }

    private void Step(DecodeContext context)
    {
        _step++;
        for (var i = _waiting.Count - 1; i >= 0; i--)
        {
            var job = _waiting[i];
            if (!job.Cancellation.IsCancellationRequested)
                continue;
            _waiting.RemoveAt(i);
            Interlocked.Decrement(ref _pending);
            job.Completion.TrySetCanceled(job.Cancellation);
        }
        if (context.BatchCount == 0)
            Release(context);

        // Requests back from a tool carry on (they add their tokens for this step's decode).
        while (_outsideDone.TryDequeue(out var back))
            back.Resume(back.IsAbandoned ? new OperationCanceledException("The engine failed this request.") : null);
        Admit(context);
        if (_awaitingDecode.Count == 0 && context.BatchCount == 0)
            return;

        Exception? failure = null;
        try
        {
            context.Decode();
        }
        catch (Exception e)
        {
            failure = e;
        }
        context.ClearBatch();
        Release(context);
        // Those that need a whole batch go first, then every request of this decode reads its outputs and adds its next tokens.
        _resuming.AddRange(_awaitingRoom);
        _awaitingRoom.Clear();
        foreach (var session in _resuming)
            session.Resume(null);
        _resuming.Clear();
        _resuming.AddRange(_awaitingDecode);
        _awaitingDecode.Clear();
        foreach (var session in _resuming)
        {
            if (failure is null)
                session.NoteSharedDecode(_resuming.Count);
            session.Resume(failure);
        }
        _resuming.Clear();
    }

    /// <summary>
    /// Admits waiting requests in arrival order while their sequences are free and their reservation fits; each starts
    /// its strategy, which runs until it first waits for a decode.
    /// </summary>
    private void Admit(DecodeContext context)
    {
        while (_waiting.Count > 0)
        {
            var job = _waiting[0];
            if (!_batching && _active.Count > 0 && !job.FromTool)
                return;
            var wanted = Math.Clamp(job.Strategy.SequencesWanted(context.SequenceCount), 1, context.SequenceCount);
            var prompt = job.Request.PromptTokens!;
            var home = ChooseHome(context, prompt, job.Request.ReusePrefix);
            var scratch = home < 0 ? null : ChooseScratch(home, wanted - 1);
            var scratchCells = job.Strategy.ScratchCells(prompt.Count, job.Request.MaxTokens, context.BatchCapacity);
            job.Reserved = (int)Math.Min((long)prompt.Count + job.Request.MaxTokens + scratchCells, context.ContextSize);
            if (scratch is null || !MakeRoom(context, home, scratch, job.Reserved))
            {
                if (!job.FromTool)
                    return;   // it joins when a running request ends
                _waiting.RemoveAt(0);
                Interlocked.Decrement(ref _pending);
                job.Completion.TrySetException(new AgentHostException(ErrorKind.InvalidArgument,
                    $"A tool called while decoding on model '{_model.Name}' needs a slot, but the engine's sequences or context are taken (one by the generation that called the tool); raise Sequences or ContextSize."));
                continue;
            }

            _waiting.RemoveAt(0);
            if (job.Request.ReusePrefix)
                SharePrefix(context, home, prompt);
            int[] ids = [home, .. scratch];
            foreach (var id in ids)
                _owner[id] = job;
            _isHome[home] = true;
            job.Sequences = ids;
            job.Session = new InferenceSession(context, this, ids, job.Reserved);
            _active.Add(job);
            Start(job);
        }
    }

    /// <summary>The free sequence whose cache shares the longest prefix with the prompt (ties: least recently used), or -1.</summary>
    private int ChooseHome(DecodeContext context, IReadOnlyList<int> prompt, bool reuse)
    {
        var best = -1;
        var bestShared = -1;
        for (var s = 0; s < _owner.Length; s++)
        {
            if (_owner[s] is not null)
                continue;
            var shared = reuse && _isHome[s] ? SharedPrefix(context.GetTokens(s), prompt) : 0;
            if (shared > bestShared || (shared == bestShared && _lastUsed[s] < _lastUsed[best]))
            {
                best = s;
                bestShared = shared;
            }
        }
        return best;
    }

    /// <summary><paramref name="count"/> free sequences besides the home, empty ones first, then the least recently used; null when too few are free.</summary>
    private int[]? ChooseScratch(int home, int count)
    {
        if (count == 0)
            return [];
        var free = new List<int>();
        for (var s = 0; s < _owner.Length; s++)
        {
            if (s != home && _owner[s] is null)
                free.Add(s);
        }
        if (free.Count < count)
            return null;
        return [.. free.OrderBy(s => _isHome[s]).ThenBy(s => _lastUsed[s]).Take(count)];
    }

    /// <summary>
    /// Gives the home the longest prefix of the prompt that any sequence holds (an idle cache or a running request's),
    /// by sequence copy: the cells are shared and nothing is recomputed. The strategy's start keeps it as its cached prefix.
    /// </summary>
    private void SharePrefix(DecodeContext context, int home, IReadOnlyList<int> prompt)
    {
        var own = _isHome[home] ? SharedPrefix(context.GetTokens(home), prompt) : 0;
        var source = -1;
        var longest = own;
        for (var s = 0; s < _owner.Length; s++)
        {
            if (s == home || !_isHome[s])
                continue;
            var shared = SharedPrefix(context.GetTokens(s), prompt);
            if (shared > longest)
            {
                source = s;
                longest = shared;
            }
        }
        if (source < 0)
            return;
        context.RemoveSequence(home, 0, -1);
        context.CopySequence(source, home, 0, longest);
    }

    // At most all but the last prompt token: its logits are needed.
    private static int SharedPrefix(ReadOnlySpan<int> held, IReadOnlyList<int> prompt)
    {
        var limit = Math.Min(held.Length, prompt.Count - 1);
        var n = 0;
        while (n < limit && held[n] == prompt[n])
            n++;
        return n;
    }

    /// <summary>
    /// Whether <paramref name="reserved"/> cells fit beside the running requests' reservations and the idle caches,
    /// dropping idle caches (least recently used first) until they do; the scratch sequences are emptied.
    /// </summary>
    private bool MakeRoom(DecodeContext context, int home, int[] scratch, int reserved)
    {
        long used = reserved;
        foreach (var job in _active)
            used += job.Reserved;
        foreach (var job in _releasing)
            used += job.Reserved;   // ended, but its sequences free up only after the next decode
        if (used > context.ContextSize)
            return false;
        foreach (var s in scratch)
        {
            context.RemoveSequence(s, 0, -1);
            _isHome[s] = false;
        }
        for (var s = 0; s < _owner.Length; s++)
        {
            if (s != home && _owner[s] is null)
                used += context.GetPast(s);
        }
        while (used > context.ContextSize)
        {
            var oldest = -1;
            for (var s = 0; s < _owner.Length; s++)
            {
                if (s != home && _owner[s] is null && context.GetPast(s) > 0 && (oldest < 0 || _lastUsed[s] < _lastUsed[oldest]))
                    oldest = s;
            }
            used -= context.GetPast(oldest);
            context.RemoveSequence(oldest, 0, -1);
            _isHome[oldest] = false;
        }
        return true;
    }

    private void Start(Job job)
    {
        ValueTask<GenerationResult> generation;
        try
        {
            generation = job.Strategy.GenerateAsync(job.Session!, job.Request, job.OnText, job.Cancellation);
        }
        catch (Exception e)
        {
            End(job, null, e);
            return;
        }
        if (generation.IsCompleted)
        {
            Finish(job, generation);
            return;
        }
        // Completes on the scheduler thread, inside a step (the strategy's last continuation runs there).
        var awaiter = generation.GetAwaiter();
        awaiter.UnsafeOnCompleted(() => Finish(job, generation));
    }

    private void Finish(Job job, ValueTask<GenerationResult> generation)
    {
        try
        {
            End(job, generation.Result, null);
        }
        catch (Exception e)
        {
            End(job, null, e);
        }
    }

    /// <summary>Ends a running request; its sequences free up after the next decode (tokens it added may still be in the batch).</summary>
    private void End(Job job, GenerationResult? result, Exception? error)
    {
        _active.Remove(job);
        job.Failed = error is not null;
        _releasing.Add(job);
        Interlocked.Decrement(ref _pending);
        if (result is not null)
            job.Completion.TrySetResult(result);
        else if (error is OperationCanceledException && job.Cancellation.IsCancellationRequested)
            job.Completion.TrySetCanceled(job.Cancellation);
        else
            job.Completion.TrySetException(error!);
    }

    /// <summary>Frees the sequences of ended requests: the home keeps its cache (unless the request failed), scratch sequences are emptied.</summary>
    private void Release(DecodeContext context)
    {
        foreach (var job in _releasing)
        {
            for (var i = 0; i < job.Sequences.Length; i++)
            {
                var s = job.Sequences[i];
                if (i > 0 || job.Failed)
                {
                    context.RemoveSequence(s, 0, -1);
                    _isHome[s] = false;
                }
                _owner[s] = null;
                _lastUsed[s] = _step;
            }
        }
        _releasing.Clear();
    }

    void ISessionHost.AwaitDecode(InferenceSession session) => _awaitingDecode.Add(session);

    void ISessionHost.AwaitRoom(InferenceSession session) => _awaitingRoom.Add(session);

    void ISessionHost.AwaitOutside(InferenceSession session, Task work)
    {
        work.ContinueWith(_ =>
        {
            _outsideDone.Enqueue(session);
            // Wakes the loop if it is idle: a request with no work of its own.
            _incoming.Writer.TryWrite(Job.WakeUp);
        }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    /// <summary>Stops the loop; requests still waiting or running are cancelled.</summary>
    public void Dispose()
    {
        // A client (and so its engine) may be disposed more than once, e.g. by a using and by its DI container.
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
        if (_context is { } context)
        {
            try
            {
                _model.Scheduler.RunAsync(context.Dispose).Wait(TimeSpan.FromSeconds(10));
            }
            catch (Exception e) when (e is ObjectDisposedException or AggregateException)
            {
                context.Dispose();   // the model's scheduler already stopped
            }
        }
        _stop.Dispose();
    }

    private sealed class Job(IDecodingStrategy strategy, GenerationRequest request, Action<string>? onText, CancellationToken cancellation, bool fromTool)
    {
        /// <summary>A no-op item that wakes an idle loop.</summary>
        public static readonly Job WakeUp = new(null!, null!, null, CancellationToken.None, false);

        public IDecodingStrategy Strategy { get; } = strategy;
        public GenerationRequest Request { get; } = request;
        public Action<string>? OnText { get; } = onText;
        public CancellationToken Cancellation { get; } = cancellation;
        public bool FromTool { get; } = fromTool;
        public TaskCompletionSource<GenerationResult> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public int[] Sequences { get; set; } = [];
        public InferenceSession? Session { get; set; }
        public int Reserved { get; set; }
        public bool Failed { get; set; }
    }
}
