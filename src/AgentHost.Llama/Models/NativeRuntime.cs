using LLama.Native;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace AgentHost.Llama.Models;

/// <summary>
/// Process-wide llama.cpp setup. The native log callback must be installed before the native library
/// loads; llama.cpp is very chatty, and routing its log through <see cref="ILogger"/> with a level
/// filter (category <see cref="LogCategory"/>) also keeps decoding fast.
/// </summary>
public static class NativeRuntime
{
    /// <summary>Logger category of llama.cpp's own messages (filter it in <c>Logging:LogLevel</c>).</summary>
    public const string LogCategory = "LlamaCpp";

    private static readonly Lock _gate = new();
    private static ILogger _logger = NullLogger.Instance;
    private static LLamaLogLevel _lastLevel = LLamaLogLevel.Info;
    private static bool _configured;
    [ThreadStatic] private static List<string>? _capturedErrors;

    /// <summary>
    /// Routes native log messages to <paramref name="loggerFactory"/>. Safe to call more than once:
    /// the callback is installed once and later calls only change where messages go.
    /// </summary>
    public static void Configure(ILoggerFactory loggerFactory)
    {
        ArgumentNullException.ThrowIfNull(loggerFactory);
        lock (_gate)
        {
            _logger = loggerFactory.CreateLogger(LogCategory);
            if (_configured)
                return;
            NativeLibraryConfig.All.WithLogCallback(OnNativeLog);
            _configured = true;
        }
    }

    /// <summary>
    /// Runs <paramref name="action"/> and returns the error messages llama.cpp logged on this thread
    /// meanwhile (e.g. why a grammar did not parse), so that a failure can be reported with its cause.
    /// </summary>
    internal static T CaptureErrors<T>(Func<T> action, out string errors)
    {
        var previous = _capturedErrors;
        var captured = new List<string>();
        _capturedErrors = captured;
        try
        {
            return action();
        }
        finally
        {
            _capturedErrors = previous;
            errors = string.Concat(captured).Trim();
        }
    }

    private static void OnNativeLog(LLamaLogLevel level, string message)
    {
        // A Continue fragment belongs to the message before it: filter it by that message's level.
        if (level == LLamaLogLevel.Continue)
            level = _lastLevel;
        else
            _lastLevel = level;
        if (_capturedErrors is { } captured && level == LLamaLogLevel.Error)
        {
            captured.Add(message);   // reported in the caller's exception instead of logged
            return;
        }

        var logLevel = level switch
        {
            LLamaLogLevel.Error => LogLevel.Error,
            LLamaLogLevel.Warning => LogLevel.Warning,
            LLamaLogLevel.Info => LogLevel.Information,
            LLamaLogLevel.Debug => LogLevel.Debug,
            _ => LogLevel.Trace,
        };
        var logger = _logger;
        if (logger.IsEnabled(logLevel))
            logger.Log(logLevel, "{NativeMessage}", message.TrimEnd('\n'));
    }
}
