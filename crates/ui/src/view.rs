//! The canvas view transform: where canvas pixels land on screen.
//!
//! Kept as a plain struct (no egui state) so zoom-toward-cursor, fit and 1:1 are unit-tested, and
//! every tool converts pointer positions with the same `canvas_from_screen`.

use egui::{Pos2, Rect, Vec2, pos2, vec2};

/// Smallest and largest zoom factors (screen points per canvas pixel).
pub const MIN_ZOOM: f32 = 1.0 / 64.0;
pub const MAX_ZOOM: f32 = 64.0;
/// One zoom step of the keyboard shortcuts (and one wheel notch).
pub const ZOOM_STEP: f32 = 1.25;

/// Maps canvas pixels to screen points: `screen = viewport.min + pan + canvas * zoom`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CanvasView {
    /// The screen rectangle the canvas is drawn in.
    pub viewport: Rect,
    /// Screen points per canvas pixel.
    pub zoom: f32,
    /// Screen offset of the canvas origin from `viewport.min`, in points.
    pub pan: Vec2,
}

impl Default for CanvasView {
    fn default() -> Self {
        Self {
            viewport: Rect::from_min_size(Pos2::ZERO, vec2(800.0, 600.0)),
            zoom: 1.0,
            pan: Vec2::ZERO,
        }
    }
}

impl CanvasView {
    pub fn screen_from_canvas(&self, canvas: Pos2) -> Pos2 {
        self.viewport.min + self.pan + canvas.to_vec2() * self.zoom
    }

    pub fn canvas_from_screen(&self, screen: Pos2) -> Pos2 {
        ((screen - self.viewport.min - self.pan) / self.zoom).to_pos2()
    }

    /// The screen rectangle covered by the canvas rectangle `canvas` (in canvas pixels).
    pub fn screen_rect_from_canvas(&self, canvas: Rect) -> Rect {
        Rect::from_min_max(self.screen_from_canvas(canvas.min), self.screen_from_canvas(canvas.max))
    }

    /// The canvas rectangle visible in the viewport (unclipped, in canvas pixels).
    pub fn visible_canvas_rect(&self) -> Rect {
        Rect::from_min_max(
            self.canvas_from_screen(self.viewport.min),
            self.canvas_from_screen(self.viewport.max),
        )
    }

    /// Multiplies the zoom by `factor`, keeping the canvas point under `screen_anchor` fixed
    /// (zoom toward the cursor).
    pub fn zoom_about(&mut self, screen_anchor: Pos2, factor: f32) {
        if !factor.is_finite() || factor <= 0.0 {
            return;
        }
        self.set_zoom_about(screen_anchor, self.zoom * factor);
    }

    /// Sets the zoom to `zoom` (clamped), keeping the canvas point under `screen_anchor` fixed.
    pub fn set_zoom_about(&mut self, screen_anchor: Pos2, zoom: f32) {
        let anchor_canvas = self.canvas_from_screen(screen_anchor);
        self.zoom = zoom.clamp(MIN_ZOOM, MAX_ZOOM);
        self.pan = screen_anchor - self.viewport.min - anchor_canvas.to_vec2() * self.zoom;
    }

    /// Zooms in one step about the viewport centre.
    pub fn zoom_in(&mut self) {
        self.zoom_about(self.viewport.center(), ZOOM_STEP);
    }

    pub fn zoom_out(&mut self) {
        self.zoom_about(self.viewport.center(), 1.0 / ZOOM_STEP);
    }

    /// One screen point per canvas pixel, keeping the canvas point at the viewport centre.
    pub fn actual_pixels(&mut self) {
        self.set_zoom_about(self.viewport.center(), 1.0);
    }

    /// The largest zoom that shows the whole `canvas_size` with a margin, centred.
    pub fn fit(&mut self, canvas_size: Vec2) {
        const MARGIN_POINTS: f32 = 16.0;
        let avail = (self.viewport.size() - Vec2::splat(2.0 * MARGIN_POINTS)).max(Vec2::splat(1.0));
        let zoom = if canvas_size.x > 0.0 && canvas_size.y > 0.0 {
            (avail.x / canvas_size.x).min(avail.y / canvas_size.y)
        } else {
            1.0
        };
        self.zoom = zoom.clamp(MIN_ZOOM, MAX_ZOOM);
        self.center_on(canvas_size * 0.5);
    }

    /// Pans so that canvas point `canvas` sits at the viewport centre.
    pub fn center_on(&mut self, canvas: Vec2) {
        self.pan = self.viewport.size() * 0.5 - canvas * self.zoom;
    }

    pub fn pan_by(&mut self, screen_delta: Vec2) {
        self.pan += screen_delta;
    }

    /// Moves the viewport (the panels around it were resized), keeping the canvas point at the
    /// viewport centre in place.
    pub fn set_viewport(&mut self, viewport: Rect) {
        if viewport == self.viewport {
            return;
        }
        let centre_canvas = self.canvas_from_screen(self.viewport.center());
        self.viewport = viewport;
        self.center_on(centre_canvas.to_vec2());
    }

    /// Whether the canvas is magnified enough that pixels should be drawn as crisp squares.
    pub fn wants_nearest_filter(&self) -> bool {
        self.zoom >= 1.0
    }
}

/// The canvas pixel containing canvas point `p` (floor, so -0.5 is pixel -1).
pub fn pixel_at(p: Pos2) -> (i32, i32) {
    (p.x.floor() as i32, p.y.floor() as i32)
}

/// A canvas point from integer-pixel centre.
pub fn pixel_centre(x: i32, y: i32) -> Pos2 {
    pos2(x as f32 + 0.5, y as f32 + 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> CanvasView {
        CanvasView {
            viewport: Rect::from_min_size(pos2(100.0, 50.0), vec2(400.0, 300.0)),
            zoom: 2.0,
            pan: vec2(10.0, 20.0),
        }
    }

    #[test]
    fn transforms_are_inverse() {
        let v = view();
        let c = pos2(33.5, -7.25);
        let s = v.screen_from_canvas(c);
        assert_eq!(s, pos2(100.0 + 10.0 + 67.0, 50.0 + 20.0 - 14.5));
        let back = v.canvas_from_screen(s);
        assert!((back - c).length() < 1e-4);
    }

    #[test]
    fn zoom_keeps_point_under_cursor() {
        let mut v = view();
        let cursor = pos2(250.0, 170.0);
        let before = v.canvas_from_screen(cursor);
        v.zoom_about(cursor, 3.0);
        assert_eq!(v.zoom, 6.0);
        assert!((v.canvas_from_screen(cursor) - before).length() < 1e-3);
        v.zoom_about(cursor, 1e9);
        assert_eq!(v.zoom, MAX_ZOOM);
        assert!((v.canvas_from_screen(cursor) - before).length() < 1e-3);
        v.zoom_about(cursor, f32::NAN);
        assert_eq!(v.zoom, MAX_ZOOM);
    }

    #[test]
    fn fit_shows_whole_canvas_centred() {
        let mut v = view();
        v.fit(vec2(1000.0, 500.0));
        let r = v.screen_rect_from_canvas(Rect::from_min_size(Pos2::ZERO, vec2(1000.0, 500.0)));
        assert!(v.viewport.contains_rect(r), "{r:?} in {:?}", v.viewport);
        assert!((r.center() - v.viewport.center()).length() < 1e-3);
        assert!((r.width() - (400.0 - 32.0)).abs() < 1e-3);
    }

    #[test]
    fn actual_pixels_is_one_to_one_about_centre() {
        let mut v = view();
        let centre_canvas = v.canvas_from_screen(v.viewport.center());
        v.actual_pixels();
        assert_eq!(v.zoom, 1.0);
        assert!((v.canvas_from_screen(v.viewport.center()) - centre_canvas).length() < 1e-3);
        assert!(v.wants_nearest_filter());
    }

    #[test]
    fn resizing_viewport_keeps_centre() {
        let mut v = view();
        let c = v.canvas_from_screen(v.viewport.center());
        v.set_viewport(Rect::from_min_size(pos2(0.0, 0.0), vec2(900.0, 700.0)));
        assert!((v.canvas_from_screen(v.viewport.center()) - c).length() < 1e-3);
    }

    #[test]
    fn pixel_at_floors_negative() {
        assert_eq!(pixel_at(pos2(-0.5, 3.99)), (-1, 3));
        assert_eq!(pixel_at(pixel_centre(4, 5)), (4, 5));
    }
}
