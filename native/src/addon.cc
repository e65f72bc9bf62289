// JavaScript bindings: argument checks and conversions only; the work is in
// signature.cc and index.cc.
#include <napi.h>

#include <cerrno>
#include <cstdlib>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>

#include "index.h"
#include "segment.h"
#include "signature.h"

namespace haarseek {
namespace {

template <typename T>
T TypedArg(const Napi::CallbackInfo& info, size_t i, size_t minLength, const char* what) {
  if (info.Length() <= i || !info[i].IsTypedArray()) throw Napi::TypeError::New(info.Env(), std::string(what) + ": typed array expected");
  Napi::TypedArray t = info[i].As<Napi::TypedArray>();
  T typed = info[i].As<T>();
  if (t.TypedArrayType() != typed.TypedArrayType() || t.ElementLength() < minLength) {
    throw Napi::TypeError::New(info.Env(), std::string(what) + ": wrong typed array kind or length");
  }
  return typed;
}

double NumberArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(what) + ": number expected");
  return info[i].As<Napi::Number>().DoubleValue();
}

// query(coefs, avgl, limit, sketch, fast, allowed?)'s arguments, shared by the index and
// the segment. The pointers stay valid during the call (the arrays belong to its arguments).
QueryArgs QueryArgsOf(const Napi::CallbackInfo& info) {
  QueryArgs q{};
  q.coefs = TypedArg<Napi::Int32Array>(info, 0, kSignatureLength, "coefs").Data();
  q.avgl = TypedArg<Napi::Float64Array>(info, 1, kChannels, "avgl").Data();
  const double limit = NumberArg(info, 2, "limit");
  q.limit = limit >= 1 ? (limit >= 9e15 ? static_cast<size_t>(9e15) : static_cast<size_t>(limit)) : 0;
  q.sketch = info.Length() > 3 && info[3].ToBoolean().Value();
  q.fast = info.Length() > 4 && info[4].ToBoolean().Value();
  if (info.Length() > 5 && !info[5].IsUndefined() && !info[5].IsNull()) {
    auto allowed = TypedArg<Napi::Float64Array>(info, 5, 0, "allowed");
    q.filtered = true;
    q.allowed = allowed.Data();
    q.allowedCount = allowed.ElementLength();
  }
  return q;
}

// Ranked results as JavaScript gets them: Float64Array [id, raw, id, raw, ...].
Napi::Float64Array RankedArray(Napi::Env env, const std::vector<Ranked>& ranked) {
  auto out = Napi::Float64Array::New(env, ranked.size() * 2);
  double* o = out.Data();
  for (const Ranked& r : ranked) {
    *o++ = r.id;
    *o++ = r.score;
  }
  return out;
}

// Runs f, turning C++ exceptions into JavaScript ones.
template <typename F>
auto Guard(Napi::Env env, F f) -> decltype(f()) {
  try {
    return f();
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::invalid_argument& e) {
    throw Napi::RangeError::New(env, e.what());
  } catch (const std::bad_alloc&) {
    throw Napi::Error::New(env, "haarseek native index: out of memory");
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
}

Napi::Value SignatureFromRgbJs(const Napi::CallbackInfo& info) {
  auto rgb = TypedArg<Napi::Uint8Array>(info, 0, 0, "rgb");
  if (rgb.ElementLength() != static_cast<size_t>(kPixels) * 3) {
    throw Napi::RangeError::New(info.Env(), "expected " + std::to_string(kPixels * 3) + " bytes of 128x128 RGB, got " +
                                                std::to_string(rgb.ElementLength()));
  }
  auto coefs = TypedArg<Napi::Int32Array>(info, 1, kSignatureLength, "coefs");
  auto avgl = TypedArg<Napi::Float64Array>(info, 2, kChannels, "avgl");
  SignatureFromRgb(rgb.Data(), coefs.Data(), avgl.Data());
  return info.Env().Undefined();
}

class IndexWrap : public Napi::ObjectWrap<IndexWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeIndex",
                       {
                           InstanceMethod<&IndexWrap::Add>("add"),
                           InstanceMethod<&IndexWrap::AddBatch>("addBatch"),
                           InstanceMethod<&IndexWrap::Trim>("trim"),
                           InstanceMethod<&IndexWrap::Remove>("remove"),
                           InstanceMethod<&IndexWrap::Has>("has"),
                           InstanceMethod<&IndexWrap::Size>("size"),
                           InstanceMethod<&IndexWrap::Ids>("ids"),
                           InstanceMethod<&IndexWrap::Avgl>("avgl"),
                           InstanceMethod<&IndexWrap::Clear>("clear"),
                           InstanceMethod<&IndexWrap::Query>("query"),
                           InstanceMethod<&IndexWrap::MemoryBytes>("memoryBytes"),
                       });
  }

  explicit IndexWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<IndexWrap>(info) {}

  void Finalize(Napi::Env env) override {
    if (reported_ != 0) Napi::MemoryManagement::AdjustExternalMemory(env, -reported_);
    reported_ = 0;
  }

 private:
  // Tells V8 about native memory in steps of 1 MiB, so GC pressure reflects it.
  void Report(Napi::Env env) {
    const int64_t now = static_cast<int64_t>(index_.MemoryBytes());
    const int64_t delta = now - reported_;
    if (delta > (1 << 20) || delta < -(1 << 20)) {
      Napi::MemoryManagement::AdjustExternalMemory(env, delta);
      reported_ = now;
    }
  }

  Napi::Value Add(const Napi::CallbackInfo& info) {
    const double id = NumberArg(info, 0, "id");
    auto coefs = TypedArg<Napi::Int32Array>(info, 1, kSignatureLength, "coefs");
    auto avgl = TypedArg<Napi::Float64Array>(info, 2, kChannels, "avgl");
    Guard(info.Env(), [&] { index_.Add(id, coefs.Data(), avgl.Data()); });
    Report(info.Env());
    return info.Env().Undefined();
  }

  Napi::Value AddBatch(const Napi::CallbackInfo& info) {
    const double count = NumberArg(info, 0, "count");
    if (!(count >= 0) || count != static_cast<double>(static_cast<size_t>(count))) {
      throw Napi::RangeError::New(info.Env(), "count: a whole number >= 0 expected");
    }
    const size_t n = static_cast<size_t>(count);
    auto ids = TypedArg<Napi::Float64Array>(info, 1, n, "ids");
    auto avgl = TypedArg<Napi::Float64Array>(info, 2, n * kChannels, "avgl");
    auto coefs = TypedArg<Napi::Int16Array>(info, 3, n * kSignatureLength, "coefs");
    Guard(info.Env(), [&] { index_.AddBatch(n, ids.Data(), avgl.Data(), coefs.Data()); });
    Report(info.Env());
    return info.Env().Undefined();
  }

  Napi::Value Trim(const Napi::CallbackInfo& info) {
    Guard(info.Env(), [&] { index_.Trim(); });
    Report(info.Env());
    return info.Env().Undefined();
  }

  Napi::Value Remove(const Napi::CallbackInfo& info) {
    const double id = NumberArg(info, 0, "id");
    const bool removed = Guard(info.Env(), [&] { return index_.Remove(id); });
    if (removed) Report(info.Env());
    return Napi::Boolean::New(info.Env(), removed);
  }

  Napi::Value Has(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), index_.Has(NumberArg(info, 0, "id")));
  }

  Napi::Value Size(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(index_.Size()));
  }

  Napi::Value Ids(const Napi::CallbackInfo& info) {
    const std::vector<double> ids = index_.Ids();
    auto out = Napi::Float64Array::New(info.Env(), ids.size());
    std::copy(ids.begin(), ids.end(), out.Data());
    return out;
  }

  Napi::Value Avgl(const Napi::CallbackInfo& info) {
    double avgl[kChannels];
    if (!index_.Avgl(NumberArg(info, 0, "id"), avgl)) return info.Env().Undefined();
    auto out = Napi::Float64Array::New(info.Env(), kChannels);
    std::copy(avgl, avgl + kChannels, out.Data());
    return out;
  }

  Napi::Value Clear(const Napi::CallbackInfo& info) {
    index_.Clear();
    Report(info.Env());
    return info.Env().Undefined();
  }

  // query(coefs, avgl, limit, sketch, fast, allowed?) -> Float64Array [id, raw, id, raw, ...]
  Napi::Value Query(const Napi::CallbackInfo& info) {
    const QueryArgs q = QueryArgsOf(info);
    const std::vector<Ranked> ranked = Guard(info.Env(), [&] { return index_.Query(q, index_.SharedScores()); });
    Report(info.Env());
    return RankedArray(info.Env(), ranked);
  }

  Napi::Value MemoryBytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(index_.MemoryBytes()));
  }

  SignatureIndex index_;
  int64_t reported_ = 0;
};

const char* ErrnoCode(int err) {
  switch (err) {
    case ENOENT:
      return "ENOENT";
    case EACCES:
      return "EACCES";
    case EPERM:
      return "EPERM";
    case EISDIR:
      return "EISDIR";
    case ENOMEM:
      return "ENOMEM";
    case EMFILE:
      return "EMFILE";
    case ENODEV:
      return "ENODEV";
    default:
      return "EIO";
  }
}

// A segment file mapped read-only (segment.cc); JavaScript side: src/index/native-segment.ts.
class SegmentWrap : public Napi::ObjectWrap<SegmentWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeSegment",
                       {
                           InstanceMethod<&SegmentWrap::Size>("size"),
                           InstanceMethod<&SegmentWrap::Info>("info"),
                           InstanceMethod<&SegmentWrap::Remove>("remove"),
                           InstanceMethod<&SegmentWrap::Has>("has"),
                           InstanceMethod<&SegmentWrap::Ids>("ids"),
                           InstanceMethod<&SegmentWrap::Avgl>("avgl"),
                           InstanceMethod<&SegmentWrap::Query>("query"),
                           InstanceMethod<&SegmentWrap::MemoryBytes>("memoryBytes"),
                           InstanceMethod<&SegmentWrap::Close>("close"),
                       });
  }

  // new NativeSegment(path, verifyChecksum)
  explicit SegmentWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SegmentWrap>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "path: string expected");
    const std::string path = info[0].As<Napi::String>().Utf8Value();
    const bool verify = info.Length() < 2 || info[1].ToBoolean().Value();
    try {
      segment_ = std::make_unique<Segment>(path, verify);
    } catch (const SegmentFormatError& e) {
      Napi::Error err = Napi::Error::New(env, e.what());
      err.Set("code", Napi::String::New(env, "HAARSEEK_SEGMENT_INVALID"));
      throw err;
    } catch (const SegmentIoError& e) {
      Napi::Error err = Napi::Error::New(env, e.what());
      err.Set("code", Napi::String::New(env, ErrnoCode(e.err)));
      err.Set("errno", Napi::Number::New(env, e.err));
      throw err;
    } catch (const std::bad_alloc&) {
      throw Napi::Error::New(env, "haarseek native segment: out of memory");
    } catch (const std::exception& e) {
      throw Napi::Error::New(env, e.what());
    }
  }

 private:
  Napi::Value Size(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(segment_->Live()));
  }

  // { count, removed, seq, dbId, fileBytes, mappedBytes }
  Napi::Value Info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("count", static_cast<double>(segment_->Count()));
    o.Set("removed", static_cast<double>(segment_->Removed()));
    o.Set("seq", static_cast<double>(segment_->Seq()));
    o.Set("dbId", segment_->DbId());
    o.Set("fileBytes", static_cast<double>(segment_->FileBytes()));
    o.Set("mappedBytes", static_cast<double>(segment_->MappedBytes()));
    return o;
  }

  Napi::Value Remove(const Napi::CallbackInfo& info) {
    const double id = NumberArg(info, 0, "id");
    return Napi::Boolean::New(info.Env(), Guard(info.Env(), [&] { return segment_->Remove(id); }));
  }

  Napi::Value Has(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), segment_->Has(NumberArg(info, 0, "id")));
  }

  Napi::Value Ids(const Napi::CallbackInfo& info) {
    const std::vector<double> ids = segment_->Ids();
    auto out = Napi::Float64Array::New(info.Env(), ids.size());
    std::copy(ids.begin(), ids.end(), out.Data());
    return out;
  }

  Napi::Value Avgl(const Napi::CallbackInfo& info) {
    double avgl[kChannels];
    if (!segment_->Avgl(NumberArg(info, 0, "id"), avgl)) return info.Env().Undefined();
    auto out = Napi::Float64Array::New(info.Env(), kChannels);
    std::copy(avgl, avgl + kChannels, out.Data());
    return out;
  }

  // query(coefs, avgl, limit, sketch, fast, allowed?) -> Float64Array [id, raw, id, raw, ...]
  Napi::Value Query(const Napi::CallbackInfo& info) {
    const QueryArgs q = QueryArgsOf(info);
    const std::vector<Ranked> ranked = Guard(info.Env(), [&] { return segment_->Query(q); });
    return RankedArray(info.Env(), ranked);
  }

  Napi::Value MemoryBytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(segment_->PrivateBytes()));
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    segment_->Close();
    return info.Env().Undefined();
  }

  std::unique_ptr<Segment> segment_;
};

Napi::Value SegmentKernelJs(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), Segment::KernelName(Segment::Kernel()));
}

// setSegmentKernel("scalar" | "avx2" | "avx512") -> false when this CPU cannot run it (tests, benchmarks).
Napi::Value SetSegmentKernelJs(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(info.Env(), "kernel: string expected");
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  SegmentKernel k;
  if (name == "scalar") k = SegmentKernel::kScalar;
  else if (name == "avx2") k = SegmentKernel::kAvx2;
  else if (name == "avx512") k = SegmentKernel::kAvx512;
  else throw Napi::RangeError::New(info.Env(), "kernel: scalar, avx2 or avx512 expected");
  return Napi::Boolean::New(info.Env(), Segment::SetKernel(k));
}

Napi::Value SegmentStrategyJs(const Napi::CallbackInfo& info) {
  switch (Segment::Strategy()) {
    case SegmentStrategy::kExact:
      return Napi::String::New(info.Env(), "exact");
    case SegmentStrategy::kBounded:
      return Napi::String::New(info.Env(), "bounded");
    default:
      return Napi::String::New(info.Env(), "auto");
  }
}

// setSegmentStrategy("auto" | "exact" | "bounded"): how whole-segment top-k queries run (tests, benchmarks).
Napi::Value SetSegmentStrategyJs(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(info.Env(), "strategy: string expected");
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  if (name == "auto") Segment::SetStrategy(SegmentStrategy::kAuto);
  else if (name == "exact") Segment::SetStrategy(SegmentStrategy::kExact);
  else if (name == "bounded") Segment::SetStrategy(SegmentStrategy::kBounded);
  else throw Napi::RangeError::New(info.Env(), "strategy: auto, exact or bounded expected");
  return info.Env().Undefined();
}

Napi::Value SegmentQueryCountsJs(const Napi::CallbackInfo& info) {
  const SegmentQueryCounts c = Segment::Counts();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("bounded", static_cast<double>(c.bounded));
  o.Set("exact", static_cast<double>(c.exact));
  o.Set("fewGroups", static_cast<double>(c.fewGroups));
  o.Set("noMatches", static_cast<double>(c.noMatches));
  o.Set("tooManyCandidates", static_cast<double>(c.tooManyCandidates));
  o.Set("notFull", static_cast<double>(c.notFull));
  o.Set("weakBound", static_cast<double>(c.weakBound));
  o.Set("candidates", static_cast<double>(c.candidates));
  o.Set("scored", static_cast<double>(c.scored));
  return o;
}

// setSegmentBoundLimits(first, max): tests drive every path of the bounded query; (0, 0) restores.
Napi::Value SetSegmentBoundLimitsJs(const Napi::CallbackInfo& info) {
  const double first = NumberArg(info, 0, "first"), max = NumberArg(info, 1, "max");
  if (!(first >= 0 && max >= 0)) throw Napi::RangeError::New(info.Env(), "limits: numbers >= 0 expected");
  Segment::SetBoundLimits(static_cast<size_t>(first), static_cast<size_t>(max));
  return info.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("signatureFromRgb", Napi::Function::New<SignatureFromRgbJs>(env, "signatureFromRgb"));
  exports.Set("NativeIndex", IndexWrap::Define(env));
  exports.Set("NativeSegment", SegmentWrap::Define(env));
  exports.Set("segmentKernel", Napi::Function::New<SegmentKernelJs>(env, "segmentKernel"));
  exports.Set("setSegmentKernel", Napi::Function::New<SetSegmentKernelJs>(env, "setSegmentKernel"));
  exports.Set("segmentQueryCounts", Napi::Function::New<SegmentQueryCountsJs>(env, "segmentQueryCounts"));
  exports.Set("setSegmentBoundLimits", Napi::Function::New<SetSegmentBoundLimitsJs>(env, "setSegmentBoundLimits"));
  exports.Set("segmentStrategy", Napi::Function::New<SegmentStrategyJs>(env, "segmentStrategy"));
  exports.Set("setSegmentStrategy", Napi::Function::New<SetSegmentStrategyJs>(env, "setSegmentStrategy"));
  // Bumped when the segment reader changes shape; abiVersion is the index's.
  exports.Set("segmentAbiVersion", Napi::Number::New(env, 1));
  exports.Set("abiVersion", Napi::Number::New(env, 2));
  return exports;
}

}  // namespace
}  // namespace haarseek

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return haarseek::Init(env, exports); }

NODE_API_MODULE(haarseek, InitAddon)
