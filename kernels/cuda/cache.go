package cuda

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// EnvHome is the sluice home directory; compiled kernels are cached under
// $SLUICE_HOME/cuda-cache (default ~/.cache/sluice/cuda-cache, as the
// model store resolves its home).
const EnvHome = "SLUICE_HOME"

// cacheDir returns the kernel cache directory, or "" when no home can be
// found (the backend then compiles on every start).
func cacheDir() string {
	home := os.Getenv(EnvHome)
	if home == "" {
		if x := os.Getenv("XDG_CACHE_HOME"); x != "" {
			home = filepath.Join(x, "sluice")
		} else if h, err := os.UserHomeDir(); err == nil {
			home = filepath.Join(h, ".cache", "sluice")
		}
	}
	if home == "" {
		return ""
	}
	return filepath.Join(home, "cuda-cache")
}

// cacheKey names a compiled module: the module file, a hash of its full
// source and compile options, the NVRTC and driver versions and the
// architecture. Any change to one of them compiles afresh.
func cacheKey(file, src, arch string, nvrtcMajor, nvrtcMinor, driverVersion int) string {
	opts := strings.Join(compileOptions(arch, false), " ")
	base := strings.TrimSuffix(file, ".cu")
	return fmt.Sprintf("%s-%s-nvrtc%d.%d-drv%d-%s.cubin", base, sourceHash(src+"\x00"+opts),
		nvrtcMajor, nvrtcMinor, driverVersion, arch)
}

// readCache returns a cached image, or nil when absent or unreadable.
func readCache(dir, key string) []byte {
	if dir == "" {
		return nil
	}
	data, err := os.ReadFile(filepath.Join(dir, key))
	if err != nil || len(data) == 0 {
		return nil
	}
	return data
}

// writeCache stores an image atomically (temporary file, then rename) so a
// concurrent start never reads half a file. Errors are returned for the
// caller to ignore: the cache only saves time.
func writeCache(dir, key string, image []byte) error {
	if dir == "" {
		return errors.New("no cache directory")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, key+".tmp*")
	if err != nil {
		return err
	}
	_, werr := f.Write(image)
	cerr := f.Close()
	if werr != nil || cerr != nil {
		os.Remove(f.Name())
		return errors.Join(werr, cerr)
	}
	return os.Rename(f.Name(), filepath.Join(dir, key))
}
