# Publishes the ConfigSpec executables as native AOT (the same definition scripts/build.sh uses) and prints where
# the binaries and llama.cpp libraries are and how to install the board service.
#   ./publish.ps1                     # linux-arm64 (Raspberry Pi 4B/5, Jetson)
#   ./publish.ps1 -Runtime linux-x64
#   ./publish.ps1 -Runtime linux-arm64 -LlamaPlatform linux-arm64 -Output out/arm64
param(
    [ValidateSet('linux-arm64', 'linux-x64')]
    [string]$Runtime = 'linux-arm64',
    [string]$LlamaPlatform = $Runtime,
    [string]$Output = (Join-Path $PSScriptRoot 'out/bin')
)
$ErrorActionPreference = 'Stop'
dotnet msbuild (Join-Path $PSScriptRoot 'scripts/publish.proj') -t:Publish "-p:Runtime=$Runtime" "-p:LlamaPlatform=$LlamaPlatform" "-p:OutputRoot=$Output/" -nologo -v:minimal
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
Write-Host "binaries and llama.cpp libraries: $Output"
Write-Host "on the board: copy $Output and hw/ over, then: sudo hw/install-edge.sh <copied bin dir>; journalctl -u configspec-edge -f"
exit 0
