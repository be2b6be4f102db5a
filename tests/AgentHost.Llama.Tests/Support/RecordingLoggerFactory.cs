using AgentHost.Llama.Models;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Testing;

namespace AgentHost.Llama.Tests.Support;

/// <summary>A logger factory that keeps every entry with its category (llama.cpp's own log excluded unless asked for), for asserting on what a component logs.</summary>
internal sealed class RecordingLoggerFactory(bool includeNative = false) : ILoggerFactory
{
    private readonly FakeLogCollector _collector = new();

    public IReadOnlyList<(string Category, LogLevel Level, string Message)> Entries =>
        _collector.GetSnapshot().Select(r => (r.Category ?? "", r.Level, r.Message)).ToList();

    public ILogger CreateLogger(string categoryName) =>
        categoryName == NativeRuntime.LogCategory && !includeNative ? NullLogger.Instance : new FakeLogger(_collector, categoryName);

    public void AddProvider(ILoggerProvider provider)
    {
    }

    public void Dispose()
    {
    }
}
