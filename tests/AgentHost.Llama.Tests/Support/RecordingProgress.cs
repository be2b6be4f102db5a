namespace AgentHost.Llama.Tests.Support;

/// <summary>An <see cref="IProgress{T}"/> that records reports synchronously (unlike <see cref="Progress{T}"/>, which posts them).</summary>
internal sealed class RecordingProgress<T> : IProgress<T>
{
    private readonly List<T> _reports = [];

    public Action<T>? OnReport { get; init; }

    public IReadOnlyList<T> Reports
    {
        get
        {
            lock (_reports)
                return _reports.ToList();
        }
    }

    public void Report(T value)
    {
        lock (_reports)
            _reports.Add(value);
        OnReport?.Invoke(value);
    }
}
