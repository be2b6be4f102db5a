using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace AgentHost.Plugins;

/// <summary>The few Linux calls <see cref="FilePlugin"/> needs to check an opened file rather than a path.</summary>
internal static class LinuxFile
{
    public const int NoEntry = 2, NotDirectory = 20, TooManyLinks = 40;   // ENOENT, ENOTDIR, ELOOP
    private const int ReadOnly = 0, NonBlocking = 0x800, CloseOnExec = 0x80000, PathOnly = 0x200000;
    private const int EmptyPath = 0x1000;            // AT_EMPTY_PATH
    private const uint BasicStats = 0x7ff;           // STATX_BASIC_STATS

    // O_NOFOLLOW is one of the few flags whose value differs between architectures.
    private static int NoFollow => RuntimeInformation.ProcessArchitecture is Architecture.Arm64 or Architecture.Arm ? 0x8000 : 0x20000;

    /// <summary>Opens a file for reading without following a final link and without blocking on a FIFO; null and the errno on failure.</summary>
    public static SafeFileHandle? OpenForReading(string path, out int error)
    {
        var fd = open(path, ReadOnly | NonBlocking | CloseOnExec | NoFollow);
        error = fd < 0 ? Marshal.GetLastPInvokeError() : 0;
        return fd < 0 ? null : new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>The path of <paramref name="path"/> with every link resolved, or null.</summary>
    public static string? RealPath(string path)
    {
        var fd = open(path, PathOnly | CloseOnExec);
        if (fd < 0)
            return null;
        using var handle = new SafeFileHandle(fd, ownsHandle: true);
        return RealPath(handle);
    }

    /// <summary>Where the opened file really is (its /proc/self/fd entry), or null.</summary>
    public static string? RealPath(SafeFileHandle handle) =>
        new FileInfo($"/proc/self/fd/{handle.DangerousGetHandle()}").LinkTarget;

    /// <summary>Type, link count and size of the opened file.</summary>
    public static FileStatus Status(SafeFileHandle handle)
    {
        // struct statx has one layout on every architecture: stx_nlink at 16, stx_mode at 28, stx_size at 40.
        var buffer = new byte[256];
        if (statx((int)handle.DangerousGetHandle(), "", EmptyPath, BasicStats, buffer) != 0)
            throw new IOException($"statx failed (error {Marshal.GetLastPInvokeError()}).");
        var mode = System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(buffer.AsSpan(28)) & 0xF000;
        return new FileStatus(
            System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(16)),
            System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(buffer.AsSpan(40)),
            IsRegularFile: mode == 0x8000,
            IsDirectory: mode == 0x4000);
    }

    /// <summary>What <see cref="Status"/> reads.</summary>
    public readonly record struct FileStatus(uint Links, ulong Size, bool IsRegularFile, bool IsDirectory);

    [DllImport("libc", SetLastError = true)]
    private static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

    [DllImport("libc", SetLastError = true)]
    private static extern int statx(int directory, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mask, [Out] byte[] status);
}
