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
    private readonly BlockingCollection<Action> _queue = new();
    private readonly Thread _thread;

    /// <summary>Starts the scheduler thread.</summary>
    public ModelScheduler(string name)
    {
        _thread = new Thread(Run) { IsBackground = true, Name = $"llama:{name}" };
        _thread.Start();
    }

    /// <summary>Whether the caller is on the scheduler thread.</summary>
    public bool IsCurrentThread => Environment.CurrentManagedThreadId == _thread.ManagedThreadId;

    /// <summary>Throws when called off the scheduler thread: native contexts must never be touched elsewhere.</summary>
    public void VerifyAccess()
    {
        if (!IsCurrentThread)
            throw new InvalidOperationException("A llama context was used off its model's scheduler thread; run the work through ModelScheduler.RunAsync.");
    }

    /// <summary>Runs <paramref name="work"/> on the scheduler thread (inline when already on it).</summary>
    public Task<T> RunAsync<T>(Func<T> work, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(work);
        if (IsCurrentThread)
            return Task.FromResult(work());

        var completion = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        var registration = cancellationToken.Register(() => completion.TrySetCanceled(cancellationToken));
        try
        {
            _queue.Add(() =>
            {
                using (registration)
                {
                    if (completion.Task.IsCompleted)
                        return;
                    try
                    {
                        completion.TrySetResult(work());
                    }
                    catch (OperationCanceledException ex)
                    {
                        completion.TrySetCanceled(ex.CancellationToken);
                    }
                    catch (Exception ex)
                    {
                        completion.TrySetException(ex);
                    }
                }
            }, CancellationToken.None);
        }
        catch (InvalidOperationException)
        {
            registration.Dispose();
            throw new ObjectDisposedException(nameof(ModelScheduler));
        }
        return completion.Task;
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

    /// <summary>Lets queued work finish, then stops the thread.</summary>
    public void Dispose()
    {
        if (_queue.IsAddingCompleted)
            return;
        _queue.CompleteAdding();
        if (!IsCurrentThread)
            _thread.Join();
        _queue.Dispose();
    }
}
