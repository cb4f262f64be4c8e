using System.Text;

namespace ConfigSpec;

/// <summary>Writes a file through a temporary beside it and a rename: a reader sees the finished file or the previous one.</summary>
public static class AtomicFile
{
    public static void Write(string path, string text) => Write(path, Encoding.UTF8.GetBytes(text));

    /// <summary>Writes <paramref name="bytes"/> to a temporary file, flushes it to disk and renames it over <paramref name="path"/>.</summary>
    public static void Write(string path, ReadOnlySpan<byte> bytes)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var temporary = $"{path}.{Environment.ProcessId}.tmp";
        using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            stream.Write(bytes);
            stream.Flush(flushToDisk: true);
        }

        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>
    /// Deletes the temporaries that writers killed in the middle of <see cref="Write(string, ReadOnlySpan{byte})"/> left in
    /// <paramref name="directory"/> (<c>NAME.PID.tmp</c> of processes no longer running; a live writer's own is left alone).
    /// Returns how many.
    /// </summary>
    public static int RemoveAbandonedIn(string directory)
    {
        if (!Directory.Exists(directory))
        {
            return 0;
        }

        var removed = 0;
        foreach (var file in Directory.EnumerateFiles(directory, "*.tmp"))
        {
            var name = Path.GetFileNameWithoutExtension(file);
            if (int.TryParse(Path.GetExtension(name).TrimStart('.'), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var pid)
                && pid != Environment.ProcessId && !Running(pid))
            {
                File.Delete(file);
                removed++;
            }
        }

        return removed;
    }

    private static bool Running(int pid)
    {
        try
        {
            using var process = System.Diagnostics.Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }
}
