using System.Collections.Concurrent;

namespace AgentHost.Llama.Engine;

/// <summary>
/// One dedicated thread per loaded model that runs every native call on its contexts, in order.
/// llama.cpp's CPU backend runs OpenMP thread teams bound to the calling thread: decodes that hop
/// between thread-pool threads multiply the teams, which then spin and fight for the cores.
/// Serialising work here also makes concurrent requests safe.
/// </summary>
public sealed class ModelScheduler : IDisposable
{
    /// <summary>How deep waits for outside work may nest (a tool that calls the model, whose decoding calls a tool ...).</summary>
    public const int MaxWaitDepth = 8;

    private static readonly Action _wakeUp = () => { };
    // The scheduler (if any) that is waiting, inside decoding, for the work started in this async flow.
    private static readonly AsyncLocal<ModelScheduler?> _awaitedBy = new();

    private readonly BlockingCollection<Action> _queue = new();
    private readonly Thread _thread;
    private readonly string _name;
    private int _disposed;
    private int _waitDepth;   // touched on the scheduler thread only

    /// <summary>Starts the scheduler thread.</summary>
    public ModelScheduler(string name)
    {
        _name = name;
        _thread = new Thread(Run) { IsBackground = true, Name = $"llama:{name}" };
        _thread.Start();
    }

    /// <summary>Whether the caller is on the scheduler thread.</summary>
    public bool IsCurrentThread => Environment.CurrentManagedThreadId == _thread.ManagedThreadId;

    /// <summary>Whether work is queued behind the running work (a long-running work item yields when it is).</summary>
    public bool HasQueuedWork => _queue.Count > 0;

    /// <summary>Throws when called off the scheduler thread: native contexts must never be touched elsewhere.</summary>
    public void VerifyAccess()
    {
        if (!IsCurrentThread)
            throw new InvalidOperationException("A llama context was used off its model's scheduler thread; run the work through ModelScheduler.RunAsync.");
    }

    /// <summary>
    /// Runs <paramref name="work"/> on the scheduler thread (inline when already on it). Cancelling
    /// before the work starts cancels the task at once; once started, the work itself observes the
    /// token, so the task never completes while the context is still in use.
    /// </summary>
    public Task<T> RunAsync<T>(Func<T> work, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(work);
        if (IsCurrentThread)
            return Task.FromResult(work());

        var item = new WorkItem<T>(work, cancellationToken);
        try
        {
            _queue.Add(item.Run, CancellationToken.None);
        }
        catch (InvalidOperationException)
        {
            item.Abandon();
            throw new ObjectDisposedException(nameof(ModelScheduler));
        }
        return item.Task;
    }

    /// <summary>
    /// Whether the current async flow is outside work (e.g. a tool) that this scheduler's thread is waiting for
    /// in <see cref="WaitFor{T}"/>: such work must not wait for anything that only a finished decode releases.
    /// </summary>
    public bool IsAwaitingCurrentFlow => _awaitedBy.Value == this;

    /// <summary>
    /// Starts outside work from decoding (on the scheduler thread) and waits for it while running the other work
    /// queued here, so work that calls back into this model (a tool that runs a prompt on it) runs instead of
    /// deadlocking. Decoding is paused meanwhile; other sessions' work runs in between.
    /// </summary>
    /// <param name="start">Starts the work; its async flow sees <see cref="IsAwaitingCurrentFlow"/>.</param>
    /// <param name="cancellationToken">Stops waiting (the work itself gets the token from the caller).</param>
    /// <returns>The work's result.</returns>
    /// <exception cref="AgentHostException">Waits nest deeper than <see cref="MaxWaitDepth"/>.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public T WaitFor<T>(Func<Task<T>> start, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(start);
        VerifyAccess();
        if (_waitDepth >= MaxWaitDepth)
            throw new AgentHostException(ErrorKind.InvalidArgument, $"Calls from decoding back into model '{_name}' nest more than {MaxWaitDepth} deep; a tool that calls the model whose decoding calls the tool again is refused.");

        // Counted from the start: work that begins on this thread (RunAsync runs inline here) may nest at once.
        _waitDepth++;
        try
        {
            var task = StartOutsideWork(start);

            using var cancelled = cancellationToken.Register(Wake);
            task.ContinueWith(_ => Wake(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            while (!task.IsCompleted && !cancellationToken.IsCancellationRequested && _queue.TryTake(out var work, Timeout.Infinite))
                work();
            cancellationToken.ThrowIfCancellationRequested();
            return task.GetAwaiter().GetResult();
        }
        finally
        {
            _waitDepth--;
        }
    }

    /// <summary>
    /// Starts outside work from decoding: its async flow sees <see cref="IsAwaitingCurrentFlow"/>, so it never waits for
    /// what only the waiting decode releases.
    /// </summary>
    public Task<T> StartOutsideWork<T>(Func<Task<T>> start)
    {
        ArgumentNullException.ThrowIfNull(start);
        var outer = _awaitedBy.Value;
        _awaitedBy.Value = this;
        try
        {
            return start();
        }
        finally
        {
            _awaitedBy.Value = outer;
        }
    }

    private void Wake()
    {
        try
        {
            _queue.TryAdd(_wakeUp);
        }
        catch (InvalidOperationException)
        {
            // Disposed: no more work will come, and the waiting loop has ended.
        }
    }

    /// <summary>Runs <paramref name="work"/> on the scheduler thread.</summary>
    public Task RunAsync(Action work, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(work);
        return RunAsync(() => { work(); return true; }, cancellationToken);
    }

    private void Run()
    {
        foreach (var work in _queue.GetConsumingEnumerable())
            work();
    }

    private sealed class WorkItem<T>
    {
        private const int Queued = 0, Started = 1, Cancelled = 2;
        private readonly Func<T> _work;
        private readonly CancellationToken _cancellationToken;
        private readonly TaskCompletionSource<T> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly CancellationTokenRegistration _registration;
        private int _state;

        public WorkItem(Func<T> work, CancellationToken cancellationToken)
        {
            _work = work;
            _cancellationToken = cancellationToken;
            _registration = cancellationToken.Register(() =>
            {
                if (Interlocked.CompareExchange(ref _state, Cancelled, Queued) == Queued)
                    _completion.TrySetCanceled(cancellationToken);
            });
        }

        public Task<T> Task => _completion.Task;

        public void Run()
        {
            if (Interlocked.CompareExchange(ref _state, Started, Queued) != Queued)
                return;
            _registration.Dispose();
            try
            {
                _completion.TrySetResult(_work());
            }
            catch (OperationCanceledException) when (_cancellationToken.IsCancellationRequested)
            {
                _completion.TrySetCanceled(_cancellationToken);
            }
            catch (Exception ex)
            {
                _completion.TrySetException(ex);
            }
        }

        public void Abandon() => _registration.Dispose();
    }

    /// <summary>Lets queued work finish, then stops the thread.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
            return;
        _queue.CompleteAdding();
        if (!IsCurrentThread)
            _thread.Join();
    }
}
