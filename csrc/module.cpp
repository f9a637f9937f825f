// The extension is a Python module only so that `import pynas._C` loads it (and thereby
// runs the TORCH_LIBRARY registrations); it exposes no Python functions of its own.
#include <Python.h>

extern "C" {
PyMODINIT_FUNC PyInit__C(void) {
  static struct PyModuleDef module_def = {
      PyModuleDef_HEAD_INIT, "_C", "pynas compiled core: ops live in torch.ops.pynas", -1, nullptr,
  };
  return PyModule_Create(&module_def);
}
}
