using Microsoft.Extensions.Logging;

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

/// <summary>A logger factory that keeps every entry with its category (llama.cpp's own log excluded), for asserting on what a component logs.</summary>
internal sealed class RecordingLoggerFactory : ILoggerFactory
{
    private readonly List<(string Category, LogLevel Level, string Message)> _entries = [];

    public IReadOnlyList<(string Category, LogLevel Level, string Message)> Entries
    {
        get
        {
            lock (_entries)
                return _entries.ToList();
        }
    }

    public ILogger CreateLogger(string categoryName) => new CategoryLogger(this, categoryName);

    public void AddProvider(ILoggerProvider provider)
    {
    }

    public void Dispose()
    {
    }

    private sealed class CategoryLogger(RecordingLoggerFactory owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => category != AgentHost.Llama.Models.NativeRuntime.LogCategory;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel))
                return;
            lock (owner._entries)
                owner._entries.Add((category, logLevel, formatter(state, exception)));
        }
    }
}
