using System.Runtime.InteropServices;

namespace ConfigSpec.Interop.Llama;

/// <summary>Owns a native <c>llama_model</c>.</summary>
public sealed class LlamaModelHandle : SafeHandle
{
    public LlamaModelHandle() : base(IntPtr.Zero, ownsHandle: true) { }

    internal LlamaModelHandle(nint pointer) : base(IntPtr.Zero, ownsHandle: true) => SetHandle(pointer);

    public override bool IsInvalid => handle == IntPtr.Zero;

    protected override bool ReleaseHandle()
    {
        NativeMethods.llama_model_free(handle);
        return true;
    }
}

/// <summary>Owns a native <c>llama_context</c> and keeps its model alive until the context is freed.</summary>
public sealed class LlamaContextHandle : SafeHandle
{
    private LlamaModelHandle? _model;

    public LlamaContextHandle() : base(IntPtr.Zero, ownsHandle: true) { }

    internal LlamaContextHandle(nint pointer, LlamaModelHandle model) : base(IntPtr.Zero, ownsHandle: true)
    {
        var added = false;
        model.DangerousAddRef(ref added);
        _model = model;
        SetHandle(pointer);
    }

    public override bool IsInvalid => handle == IntPtr.Zero;

    protected override bool ReleaseHandle()
    {
        NativeMethods.llama_free(handle);
        _model?.DangerousRelease();
        _model = null;
        return true;
    }
}

/// <summary>Owns a native <c>llama_sampler</c> chain.</summary>
public sealed class LlamaSamplerHandle : SafeHandle
{
    public LlamaSamplerHandle() : base(IntPtr.Zero, ownsHandle: true) { }

    internal LlamaSamplerHandle(nint pointer) : base(IntPtr.Zero, ownsHandle: true) => SetHandle(pointer);

    public override bool IsInvalid => handle == IntPtr.Zero;

    protected override bool ReleaseHandle()
    {
        NativeMethods.llama_sampler_free(handle);
        return true;
    }
}
