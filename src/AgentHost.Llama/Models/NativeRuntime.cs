using System.Reflection;
using LLama.Native;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace AgentHost.Llama.Models;

/// <summary>
/// Process-wide llama.cpp setup. The native log callback must be installed before the native library
/// loads; llama.cpp is very chatty, and routing its log through <see cref="ILogger"/> with a level
/// filter (category <see cref="LogCategory"/>) also keeps decoding fast. Its load chatter is logged at
/// <see cref="LogLevel.Debug"/> (see <see cref="MapLevel"/>), so a host app at the default level stays quiet.
/// </summary>
public static class NativeRuntime
{
    /// <summary>Logger category of llama.cpp's own messages (filter it in <c>Logging:LogLevel</c>).</summary>
    public const string LogCategory = "LlamaCpp";

    private static readonly Lock _gate = new();
    private static ILogger _logger = NullLogger.Instance;
    private static LLamaLogLevel _lastLevel = LLamaLogLevel.Info;
    private static LogLevel _lastLogLevel = LogLevel.Debug;
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

    /// <summary>The LLamaSharp package version this library was built against (its assembly carries none), or null.</summary>
    internal static string? LLamaSharpVersion { get; } = typeof(NativeRuntime).Assembly
        .GetCustomAttributes<System.Reflection.AssemblyMetadataAttribute>()
        .FirstOrDefault(a => a.Key == "LLamaSharpVersion" && !string.IsNullOrWhiteSpace(a.Value))?.Value;

    /// <summary>
    /// The <see cref="AgentHostException"/> for a failure to load llama.cpp's native library (LLamaSharp throws a
    /// <see cref="TypeInitializationException"/> around its own <c>RuntimeError</c>, or a <see cref="DllNotFoundException"/>,
    /// at the first native call), naming the backend packages an app adds; <see langword="null"/> for any other failure.
    /// </summary>
    internal static AgentHostException? BackendMissing(Exception exception)
    {
        for (Exception? e = exception; e is not null; e = e.InnerException)
        {
            var native = e is DllNotFoundException
                || e is TypeInitializationException { TypeName: { } type } && type.StartsWith("LLama.", StringComparison.Ordinal)
                || e.GetType().FullName == "LLama.Exceptions.RuntimeError" && e.Message.Contains("native library", StringComparison.OrdinalIgnoreCase);
            if (!native)
                continue;
            var version = LLamaSharpVersion;
            return new AgentHostException(ErrorKind.NativeBackendMissing,
                "llama.cpp's native library could not be loaded: the app references no LLamaSharp backend package that fits this machine. "
                + (version is null
                    ? "Add one at the version of the LLamaSharp package: LLamaSharp.Backend.Cpu for the CPU, or LLamaSharp.Backend.Cuda12 for an NVIDIA GPU."
                    : $"Add one at LLamaSharp's version {version}: LLamaSharp.Backend.Cpu for the CPU, or LLamaSharp.Backend.Cuda12 for an NVIDIA GPU "
                        + $"(dotnet add package LLamaSharp.Backend.Cpu --version {version})."), exception);
        }
        return null;
    }

    /// <summary>
    /// The <see cref="LogLevel"/> a llama.cpp message is logged at. llama.cpp's INFO is its load and context
    /// chatter (hyperparameters, tensor buffers, KV cache sizes: over a hundred lines per model), so it goes to
    /// <see cref="LogLevel.Debug"/> and its DEBUG to <see cref="LogLevel.Trace"/>: a host app at the default
    /// <see cref="LogLevel.Information"/> prints none of it. Warnings and errors keep their level, except the
    /// warnings in <see cref="IsHarmlessWarning"/>.
    /// </summary>
    internal static LogLevel MapLevel(LLamaLogLevel level, string message) => level switch
    {
        LLamaLogLevel.Error => LogLevel.Error,
        LLamaLogLevel.Warning => IsHarmlessWarning(message) ? LogLevel.Debug : LogLevel.Warning,
        LLamaLogLevel.Info => LogLevel.Debug,
        _ => LogLevel.Trace,
    };

    /// <summary>
    /// Warnings llama.cpp prints for files that load and run correctly. "bad special token: 'tokenizer.ggml.X_token_id'
    /// = N, using default id M" means the GGUF names a special token (often padding or separator) outside its
    /// vocabulary; llama.cpp ignores the entry and keeps its default, and this library never uses those tokens
    /// (it stops on the vocabulary's end-of-generation tokens), so nothing is wrong for the user to fix.
    /// "special_eos_id is not in special_eog_ids" is printed after llama.cpp has added the EOS token to the
    /// end-of-generation set itself, which is what generation needs. "model default pooling_type is [-1], but [0] was
    /// specified" is the hidden-state session (embeddings, analysis) asking for no pooling, per-token states, on purpose.
    /// All are logged at <see cref="LogLevel.Debug"/>.
    /// </summary>
    internal static bool IsHarmlessWarning(string message) =>
        message.Contains("bad special token", StringComparison.Ordinal)
        || message.Contains("special_eos_id is not in special_eog_ids", StringComparison.Ordinal)
        || (message.Contains("pooling_type is", StringComparison.Ordinal) && message.Contains("but [0] was specified", StringComparison.Ordinal));

    private static void OnNativeLog(LLamaLogLevel level, string message)
    {
        // A Continue fragment belongs to the message before it: log it at that message's level.
        LogLevel logLevel;
        if (level == LLamaLogLevel.Continue)
        {
            level = _lastLevel;
            logLevel = _lastLogLevel;
        }
        else
        {
            _lastLevel = level;
            logLevel = _lastLogLevel = MapLevel(level, message);
        }
        if (_capturedErrors is { } captured && level == LLamaLogLevel.Error)
        {
            captured.Add(message);   // reported in the caller's exception instead of logged
            return;
        }

        var logger = _logger;
        if (logger.IsEnabled(logLevel))
            logger.Log(logLevel, "{NativeMessage}", message.TrimEnd('\n'));
    }
}
