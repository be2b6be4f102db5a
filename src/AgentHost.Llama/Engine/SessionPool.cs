using AgentHost.Llama.Models;

namespace AgentHost.Llama.Engine;

/// <summary>
/// A fixed number of sessions (slots) on one model, each keeping its KV cache between requests. A request
/// rents the idle slot whose cached tokens share the longest prefix with its prompt, so a conversation
/// keeps landing on the slot that already holds its history; when every slot is busy it waits. Safe to
/// use from many threads; the decodes themselves are serialised by the model's scheduler.
/// </summary>
public sealed class SessionPool : IDisposable
{
    private readonly LlamaModel _model;
    private readonly SemaphoreSlim _idleCount;
    private readonly InferenceSession?[] _sessions;
    private readonly bool[] _busy;
    private readonly Lock _lock = new();
    private readonly bool _hiddenStates;
    private int _pending;
    private bool _disposed;

    /// <summary>Creates a pool of <paramref name="slots"/> sessions (created on first use, with hidden states when asked).</summary>
    public SessionPool(LlamaModel model, int slots, bool hiddenStates = false)
    {
        _hiddenStates = hiddenStates;
        ArgumentNullException.ThrowIfNull(model);
        if (slots < 1)
            throw new AgentHostException(ErrorKind.InvalidArgument, $"A session pool needs at least one slot, not {slots}.");
        _model = model;
        _sessions = new InferenceSession?[slots];
        _busy = new bool[slots];
        _idleCount = new SemaphoreSlim(slots, slots);
    }

    /// <summary>Number of slots.</summary>
    public int Slots => _sessions.Length;

    /// <summary>Requests waiting for a slot or holding one.</summary>
    public int Pending => Volatile.Read(ref _pending);

    /// <summary>
    /// Waits for an idle slot and rents the one whose cache best matches <paramref name="prompt"/>.
    /// Dispose the lease to give the slot back. A tool called from decoding on this model does not wait: with no
    /// idle slot it fails at once (<see cref="AgentHostException"/>), since the slot it waits for may be its caller's.
    /// </summary>
    public async Task<SessionLease> RentAsync(ReadOnlyMemory<int> prompt, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Interlocked.Increment(ref _pending);
        try
        {
            // A tool called from decoding on this model may hold up the very slot it would wait for: never wait then.
            if (_model.Scheduler.IsAwaitingCurrentFlow)
            {
                if (!_idleCount.Wait(0, CancellationToken.None))
                    throw new AgentHostException(ErrorKind.InvalidArgument, $"A tool called while decoding on model '{_model.Name}' needs a session, but all {Slots} are busy (one with the generation that called the tool); allow more slots.");
            }
            else
            {
                await _idleCount.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        catch
        {
            Interlocked.Decrement(ref _pending);
            throw;
        }

        int slot;
        lock (_lock)
            slot = ChooseIdleSlot(prompt.Span);
        try
        {
            var session = _sessions[slot] ??= await _model.CreateSessionAsync(_hiddenStates, cancellationToken).ConfigureAwait(false);
            return new SessionLease(this, slot, session);
        }
        catch
        {
            Return(slot);
            throw;
        }
    }

    private int ChooseIdleSlot(ReadOnlySpan<int> prompt)
    {
        // Idle sessions are not decoding, so reading their tokens off the scheduler thread is safe.
        var best = -1;
        var bestShared = -1;
        for (var i = 0; i < _sessions.Length; i++)
        {
            if (_busy[i])
                continue;
            var shared = _sessions[i] is { } session ? session.GetTokens(0).CommonPrefixLength(prompt) : 0;
            if (shared > bestShared)
            {
                best = i;
                bestShared = shared;
            }
        }
        _busy[best] = true;
        return best;
    }

    private void Return(int slot)
    {
        lock (_lock)
            _busy[slot] = false;
        Interlocked.Decrement(ref _pending);
        if (!_disposed)
            _idleCount.Release();
    }

    /// <summary>Frees every session.</summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        foreach (var session in _sessions)
            session?.Dispose();
        _idleCount.Dispose();
    }

    /// <summary>A rented slot; dispose it to give the slot back.</summary>
    public sealed class SessionLease : IDisposable
    {
        private SessionPool? _pool;
        private readonly int _slot;

        internal SessionLease(SessionPool pool, int slot, InferenceSession session)
        {
            _pool = pool;
            _slot = slot;
            Session = session;
        }

        /// <summary>The rented session.</summary>
        public InferenceSession Session { get; }

        /// <summary>Gives the slot back.</summary>
        public void Dispose() => Interlocked.Exchange(ref _pool, null)?.Return(_slot);
    }
}
