// The extension is a Python module only so that `import pynas._C` loads it (and thereby
// runs the TORCH_LIBRARY registrations). Its only Python attributes record what it was built
// from, for the import check in pynas/_extension.py:
//   TORCH_VERSION  torch.__version__ of the torch it was compiled against
//   OPS_VERSION    pynas/_extension.py's OPS_VERSION when it was compiled (the op schemas' version)
// Both are passed in by CMakeLists.txt.
#include <Python.h>

#ifndef PYNAS_TORCH_VERSION
#error "PYNAS_TORCH_VERSION must be defined by the build (CMakeLists.txt)"
#endif
#ifndef PYNAS_OPS_VERSION
#error "PYNAS_OPS_VERSION must be defined by the build (CMakeLists.txt)"
#endif

extern "C" {
PyMODINIT_FUNC PyInit__C(void) {
  static struct PyModuleDef module_def = {
      PyModuleDef_HEAD_INIT, "_C", "pynas compiled core: ops live in torch.ops.pynas", -1, nullptr,
  };
  PyObject* module = PyModule_Create(&module_def);
  if (module == nullptr) return nullptr;
  if (PyModule_AddStringConstant(module, "TORCH_VERSION", PYNAS_TORCH_VERSION) < 0 ||
      PyModule_AddIntConstant(module, "OPS_VERSION", PYNAS_OPS_VERSION) < 0) {
    Py_DECREF(module);
    return nullptr;
  }
  return module;
}
}
