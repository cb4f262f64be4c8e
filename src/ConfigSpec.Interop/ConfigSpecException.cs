namespace ConfigSpec.Interop;

/// <summary>A model file is missing, unreadable, not GGUF, truncated, or rejected by llama.cpp.</summary>
public sealed class ModelFileException : ConfigSpecException
{
    public ModelFileException() { }

    public ModelFileException(string message) : base(message) { }

    public ModelFileException(string message, Exception innerException) : base(message, innerException) { }

    public ModelFileException(string path, string problem) : base($"model file '{path}': {problem}") => FilePath = path;

    public string? FilePath { get; }
}

/// <summary>The native llama.cpp libraries cannot be found or loaded, or do not match the pinned ABI.</summary>
public sealed class NativeLibraryException : ConfigSpecException
{
    public NativeLibraryException() { }

    public NativeLibraryException(string message) : base(message) { }

    public NativeLibraryException(string message, Exception innerException) : base(message, innerException) { }
}
