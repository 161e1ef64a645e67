"""Per-face ms of lite0 (7 classes) at 112 vs 128 px input, uint8 48px face in, same construction."""
import time, numpy as np, torch, timm, onnxruntime as ort, io
class Net(torch.nn.Module):
    def __init__(s, size):
        super().__init__(); s.size=size; s.m=timm.create_model("tf_efficientnet_lite0", num_classes=7, pretrained=False).eval()
    def forward(s, x):
        x = x.float()/255
        x = torch.nn.functional.interpolate(x, size=(s.size, s.size), mode="bilinear", align_corners=False).expand(-1,3,-1,-1)
        return s.m((x-0.5)/0.25)
sess={}
for size in (96,112,128):
    b=io.BytesIO(); torch.onnx.export(Net(size).eval(), torch.randint(0,256,(1,1,48,48),dtype=torch.uint8), b, input_names=["x"], dynamic_axes={"x":{0:"n"}}, dynamo=False)
    sess[size]=ort.InferenceSession(b.getvalue(), providers=["CPUExecutionProvider"])
face=np.random.randint(0,256,(1,1,48,48),dtype=np.uint8)
t={s:[] for s in sess}
for r in range(300):
    for s,ss in sess.items():
        t0=time.perf_counter(); ss.run(None,{"x":face}); t[s].append(time.perf_counter()-t0)
for s in t: print(s, round(1000*np.median(t[s]),3), "ms")
