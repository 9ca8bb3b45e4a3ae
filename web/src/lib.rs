//! wgrad in the browser. The page fits a small MLP to two half-moons with `value_and_grad`
//! (loss curve and decision boundary on canvases), shows a Hessian computed with
//! `jacfwd(jacrev(f))`, then trains the digits CNN (`wgrad::nn`, `wgrad::optim`) and draws
//! held-out digits with its predictions as it learns. Build and serve with `cargo xtask web`.

pub mod digits;
pub mod model;

#[cfg(target_arch = "wasm32")]
mod page {
    use super::{digits, model};
    use wasm_bindgen::prelude::*;
    use web_sys::{CanvasRenderingContext2d, Document, HtmlCanvasElement};

    fn doc() -> Document {
        web_sys::window()
            .and_then(|w| w.document())
            .expect("a document")
    }

    fn set_text(id: &str, text: &str) {
        if let Some(e) = doc().get_element_by_id(id) {
            e.set_text_content(Some(text));
        }
    }

    fn canvas(id: &str) -> (HtmlCanvasElement, CanvasRenderingContext2d) {
        let c: HtmlCanvasElement = doc()
            .get_element_by_id(id)
            .expect("canvas")
            .dyn_into()
            .expect("a canvas");
        let ctx = c
            .get_context("2d")
            .ok()
            .flatten()
            .expect("2d context")
            .dyn_into()
            .expect("2d context");
        (c, ctx)
    }

    /// Lets the browser paint.
    async fn next_frame() {
        let p = js_sys::Promise::new(&mut |resolve, _| {
            let _ = web_sys::window()
                .unwrap()
                .set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 0);
        });
        let _ = wasm_bindgen_futures::JsFuture::from(p).await;
    }

    fn draw_boundary(probs: &[f32], res: usize, pts: &[(f32, f32, bool)]) {
        let (c, ctx) = canvas("boundary");
        let (w, h) = (c.width() as f64, c.height() as f64);
        let cell = w / res as f64;
        for r in 0..res {
            for k in 0..res {
                let p = probs[r * res + k] as f64;
                let (red, blue) = ((255.0 * (1.0 - p)) as u8, (255.0 * p) as u8);
                ctx.set_fill_style_str(&format!(
                    "rgb({},{},{})",
                    120 + red / 2,
                    120,
                    120 + blue / 2
                ));
                ctx.fill_rect(k as f64 * cell, r as f64 * cell, cell + 0.5, cell + 0.5);
            }
        }
        for &(x, y, upper) in pts {
            let px = (x as f64 + 1.5) / 3.0 * w;
            let py = (1.5 - y as f64) / 3.0 * h;
            ctx.set_fill_style_str(if upper { "#1030ff" } else { "#ff2020" });
            ctx.begin_path();
            let _ = ctx.arc(px, py, 3.0, 0.0, std::f64::consts::TAU);
            ctx.fill();
        }
    }

    fn draw_curve(losses: &[f32]) {
        let (c, ctx) = canvas("loss");
        let (w, h) = (c.width() as f64, c.height() as f64);
        ctx.set_fill_style_str("#ffffff");
        ctx.fill_rect(0.0, 0.0, w, h);
        let top = losses.iter().cloned().fold(0.0f32, f32::max).max(1e-3) as f64;
        ctx.set_stroke_style_str("#0a7d32");
        ctx.set_line_width(2.0);
        ctx.begin_path();
        for (i, &l) in losses.iter().enumerate() {
            let x = i as f64 / (losses.len().max(2) - 1) as f64 * (w - 10.0) + 5.0;
            let y = h - 5.0 - (l as f64 / top) * (h - 10.0);
            if i == 0 {
                ctx.move_to(x, y)
            } else {
                ctx.line_to(x, y)
            }
        }
        ctx.stroke();
    }

    /// 32 held-out digits, each with the model's guess (green when right, red when wrong).
    fn draw_digits(pixels: &[f32], labels: &[i32], guesses: &[i32]) {
        let (c, ctx) = canvas("digits");
        ctx.set_fill_style_str("#ffffff");
        ctx.fill_rect(0.0, 0.0, c.width() as f64, c.height() as f64);
        let (px, cols) = (5.0, 8);
        ctx.set_font("bold 16px sans-serif");
        for k in 0..32.min(labels.len()) {
            let (x0, y0) = (
                (k % cols) as f64 * 60.0 + 6.0,
                (k / cols) as f64 * 64.0 + 4.0,
            );
            for (j, v) in pixels[k * 64..(k + 1) * 64].iter().enumerate() {
                let g = (255.0 * (1.0 - v.clamp(0.0, 1.0))) as u8;
                ctx.set_fill_style_str(&format!("rgb({g},{g},{g})"));
                ctx.fill_rect(
                    x0 + (j % 8) as f64 * px,
                    y0 + (j / 8) as f64 * px,
                    px + 0.3,
                    px + 0.3,
                );
            }
            ctx.set_fill_style_str(if guesses[k] == labels[k] {
                "#0a7d32"
            } else {
                "#d01010"
            });
            let _ = ctx.fill_text(&guesses[k].to_string(), x0 + 44.0, y0 + 30.0);
        }
    }

    fn js(e: wgrad::Error) -> JsValue {
        JsValue::from_str(&e.to_string())
    }

    /// Trains the digits CNN for a few epochs, redrawing predictions every half epoch.
    async fn train_digits() -> Result<f32, JsValue> {
        let data = digits::load();
        let pixels = data.x_test.to_vec_async::<f32>().await.map_err(js)?;
        let labels = data.y_test.to_vec_async::<i32>().await.map_err(js)?;
        let (epochs, per_epoch) = (6u32, data.y_train.numel() / 64);
        let mut trainer = digits::Trainer::new(epochs as u64 * per_epoch as u64);
        let mut accuracy = 0.0;
        for epoch in 0..epochs {
            for step in 0..per_epoch {
                let loss = trainer.step(&data, epoch, step);
                if step % (per_epoch / 2) == 0 || step + 1 == per_epoch {
                    let (guess, acc) = trainer.evaluate(&data);
                    let guess = guess.to_vec_async::<i32>().await.map_err(js)?;
                    accuracy = acc.to_vec_async::<f32>().await.map_err(js)?[0];
                    let loss = loss.to_vec_async::<f32>().await.map_err(js)?[0];
                    draw_digits(&pixels, &labels, &guess);
                    set_text(
                        "digits-status",
                        &format!(
                            "epoch {}/{epochs}, step {}: loss {loss:.3}, held-out accuracy {:.1} %",
                            epoch + 1,
                            step + 1,
                            accuracy * 100.0
                        ),
                    );
                    next_frame().await;
                }
            }
        }
        Ok(accuracy)
    }

    /// Entry point: runs when the module loads.
    #[wasm_bindgen(start)]
    pub async fn start() -> Result<(), JsValue> {
        let info = match wgrad::init_async().await {
            Ok(info) => info,
            Err(e) => {
                set_text(
                    "status",
                    &format!("This browser has no WebGPU, which wgrad needs here. ({e})"),
                );
                doc()
                    .body()
                    .unwrap()
                    .set_attribute("data-done", "no-webgpu")?;
                return Ok(());
            }
        };
        set_text(
            "adapter",
            &format!("adapter: {} ({})", info.name, info.backend),
        );
        let (pts, x, y) = model::moons(200);
        let mut p = model::init(&[2, 16, 16, 1], 7);
        let grid = model::grid(48);
        let mut losses = vec![];
        for it in 0..=400 {
            let (next, l) = model::step(&p, &x, &y, 0.5);
            p = next;
            if it % 20 == 0 {
                let loss = l
                    .to_vec_async::<f32>()
                    .await
                    .map_err(|e| JsValue::from_str(&e.to_string()))?[0];
                losses.push(loss);
                draw_curve(&losses);
                let probs = model::logits(&p, &grid).sigmoid();
                let probs = probs
                    .to_vec_async::<f32>()
                    .await
                    .map_err(|e| JsValue::from_str(&e.to_string()))?;
                draw_boundary(&probs, 48, &pts);
                set_text("status", &format!("step {it}: loss {loss:.4}"));
                next_frame().await;
            }
        }
        let h = model::rosenbrock_hessian(1.0, 1.0);
        let hv = h
            .to_vec_async::<f32>()
            .await
            .map_err(|e| JsValue::from_str(&e.to_string()))?;
        set_text(
            "hessian",
            &format!(
                "Hessian of Rosenbrock at (1, 1), jacfwd(jacrev(f)):\n[[{:8.1} {:8.1}]\n [{:8.1} {:8.1}]]",
                hv[0], hv[1], hv[2], hv[3]
            ),
        );
        train_digits().await?;
        doc()
            .body()
            .unwrap()
            .set_attribute("data-done", "trained")?;
        Ok(())
    }
}
