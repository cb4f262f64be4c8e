using System.Reflection;

namespace ConfigSpec;

/// <summary>The product's version as every program and message reports it (the build's informational version).</summary>
public static class ProductInfo
{
    /// <summary><c>0.14.0+&lt;commit&gt;</c>; every assembly of a build carries the same one.</summary>
    public static string Version { get; } =
        typeof(ProductInfo).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";
}
