package cuda

import (
	"errors"
	"os"
	"strings"
	"testing"
	"unsafe"

	"github.com/sluice-llm/sluice/kernels"
)

// fakeLib is a library that "loaded"; its symbols are never called.
type fakeLib struct{ closed *int }

func (fakeLib) Sym(name string) (unsafe.Pointer, error) {
	return nil, errors.New("fake library: no symbol " + name)
}
func (l fakeLib) Close() { *l.closed++ }

// fakeOpener loads only the named libraries and counts closes.
func fakeOpener(present map[string]bool, closed *int) opener {
	return func(name string) (lib, error) {
		if present[name] {
			return fakeLib{closed}, nil
		}
		return nil, errors.New(name + ": cannot open shared object file: No such file or directory")
	}
}

func TestMissingDriverNamesLibcuda(t *testing.T) {
	closed := 0
	b, err := newWith(fakeOpener(nil, &closed), kernels.Options{})
	if b != nil || err == nil {
		t.Fatalf("newWith = %v, %v; want an error", b, err)
	}
	for _, want := range []string{"libcuda.so.1", "NVIDIA driver"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestMissingNVRTCNamesBothVersions(t *testing.T) {
	t.Setenv(EnvNVRTC, "")
	closed := 0
	_, err := newWith(fakeOpener(map[string]bool{"libcuda.so.1": true}, &closed), kernels.Options{})
	if err == nil {
		t.Fatal("no error without NVRTC")
	}
	for _, want := range []string{"NVRTC", "libnvrtc.so.13", "libnvrtc.so.12", EnvNVRTC} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if closed != 1 {
		t.Errorf("libcuda closed %d times after the failure, want 1", closed)
	}
}

func TestNVRTCEnvOverridesNames(t *testing.T) {
	t.Setenv(EnvNVRTC, "/opt/nowhere/libnvrtc.so.12")
	closed := 0
	_, err := newWith(fakeOpener(map[string]bool{"libcuda.so.1": true, "libnvrtc.so.12": true}, &closed), kernels.Options{})
	if err == nil || !strings.Contains(err.Error(), "/opt/nowhere/libnvrtc.so.12") {
		t.Fatalf("error %v; want one naming the %s path", err, EnvNVRTC)
	}
}

func TestDriverWithoutGetProcAddress(t *testing.T) {
	t.Setenv(EnvNVRTC, "")
	closed := 0
	_, err := newWith(fakeOpener(map[string]bool{"libcuda.so.1": true, "libnvrtc.so.13": true}, &closed), kernels.Options{})
	if err == nil || !strings.Contains(err.Error(), "cuGetProcAddress") {
		t.Fatalf("error %v; want one naming cuGetProcAddress", err)
	}
	if closed != 2 {
		t.Errorf("%d libraries closed after the failure, want 2", closed)
	}
}

// TestOpenWithoutGPU opens the registered backend on this machine: without
// the NVIDIA driver it must fail naming libcuda, and return a nil Backend.
func TestOpenWithoutGPU(t *testing.T) {
	if l, err := dlOpen("libcuda.so.1"); err == nil {
		l.Close()
		t.Skip("this machine has the NVIDIA driver; the GPU tests cover it")
	}
	be, err := kernels.Open("cuda", kernels.Options{})
	if be != nil || err == nil {
		t.Fatalf("Open(cuda) = %v, %v; want nil and an error", be, err)
	}
	if !strings.Contains(err.Error(), "libcuda.so.1") {
		t.Fatalf("error %q does not name libcuda.so.1", err)
	}
	if _, err := os.Stat("/dev/nvidiactl"); err == nil {
		t.Log("note: /dev/nvidiactl exists but libcuda.so.1 does not load")
	}
}

func TestOptionsRefusedBeforeLoading(t *testing.T) {
	for _, c := range []struct {
		opts kernels.Options
		want string
	}{
		{kernels.Options{Path: "avx2"}, "avx2"},
		{kernels.Options{Threads: 5000}, "threads"},
		{kernels.Options{Device: -1}, "ordinal"},
	} {
		closed := 0
		_, err := newWith(fakeOpener(nil, &closed), c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("options %+v: error %v, want one naming %q", c.opts, err, c.want)
		}
	}
}
